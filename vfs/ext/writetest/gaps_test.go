package writetest

// knownEngineGap lists the tests (by their full t.Name(); vfstest cases as
// "TestVFSConformance/<case>") whose engine failures were known when this
// file was last committed, with the reason. Their checks log "KNOWN ENGINE
// GAP" instead of failing; everything else still asserts. A listed test
// that passes logs that its entry can go. It must not grow to hide a
// regression: an entry names a gap of the engine that is reported and
// being worked on.
//
// Empty since 2026-11-22 05:40 UTC: at HEAD 267bbc6 every test here passed
// against the wired write face.
var knownEngineGap = map[string]string{}
