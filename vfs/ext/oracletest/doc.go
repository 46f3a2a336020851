// Package oracletest checks the ext engine (package ext) against reference
// tools, through the engine's public API only:
//
//   - an oracle matrix: a source tree (files of every size, holes, a sparse
//     file over 4 GiB, a 20,000-entry directory, deep paths, hard links,
//     fast and slow symlinks, fifos and device nodes, setuid files, owners
//     other than root, extended attributes) is turned into images with
//     mkfs.ext2/3/4 -d across the layouts of issue 3, and every object the
//     engine reads must equal the source tree and what debugfs reports;
//   - a corpus walk over e2fsprogs' own regression images
//     (../shared/corpus/e2fsprogs): each must be read cleanly or refused
//     with a clear error, never panic or hang;
//   - benchmarks of open + ReadFile("/etc/passwd") on sparse images of
//     1 GiB, 20 GiB and 1 TiB (run only with -bench).
//
// Images are built by the tests themselves in t.TempDir();
// fixtures/ext/mkimages.sh is the human-runnable equivalent of the image
// builder. The package holds no product code.
package oracletest
