package writetest

// knownEngineGap lists the tests (by their full t.Name(); vfstest cases as
// "TestVFSConformance/<case>") whose engine failures were known when this
// file was last committed, with the reason. Their checks log "KNOWN ENGINE
// GAP" instead of failing; everything else still asserts. A listed test
// that passes logs that its entry can go. The lead empties this table as
// the engine closes the gaps; it must not grow to hide a regression.
//
// With face.go's write methods wired to the write engine (writeMakePath,
// writeFile, writeSetPermissions, writeSetOwnership), every notWired entry
// passed on 2026-11-22 05:33 UTC; only the entries with their own reasons still failed.
var knownEngineGap = map[string]string{
	"TestBeyondMatrix/ext2-rev0":                  notWired,
	"TestBeyondMatrix/ext3-nodirindex":            notWired,
	"TestBeyondMatrix/ext4-128inode":              notWired,
	"TestBeyondMatrix/ext4-1k-inline-largedir":    notWired,
	"TestBeyondMatrix/ext4-csumseed":              notWired,
	"TestBeyondMatrix/ext4-encrypt":               notWired,
	"TestBeyondMatrix/ext4-gdtcsum":               notWired,
	"TestBeyondMatrix/ext4-mmp":                   notWired,
	"TestBeyondMatrix/ext4-nohugefile":            notWired,
	"TestBeyondMatrix/ext4-orphanfile":            notWired,
	"TestBeyondMatrix/ext4-project":               notWired,
	"TestBeyondMatrix/ext4-quota":                 notWired,
	"TestBeyondMatrix/ext4-sparse2":               notWired,
	"TestBeyondMatrix/ext4-stableino":             notWired,
	"TestBeyondMatrix/ext4-verity":                notWired,
	"TestCrashOrder/ext2-1k":                      notWired,
	"TestCrashOrder/ext4":                         notWired,
	"TestCrashOrder/ext4-nojournal":               notWired,
	"TestDoubleIndirect/ext2-1k":                  notWired,
	"TestDoubleIndirect/ext2-4k":                  notWired,
	"TestDoubleIndirect/ext3-1k-128":              notWired,
	"TestDoubleIndirect/ext3-4k":                  notWired,
	"TestExtentTreeDeepens/ext4":                  notWired,
	"TestExtentTreeDeepens/ext4-1k":               notWired,
	"TestHtreeSplits/ext2-4k":                     notWired,
	"TestHtreeSplits/ext4":                        notWired,
	"TestHtreeSplits/ext4-1k":                     notWired,
	"TestInlineToExtents/grow-dir":                notWired,
	"TestInlineToExtents/grow-file":               notWired,
	"TestInlineToExtents/new-file":                newNotInline,
	"TestMatrix/ext2-1k":                          notWired,
	"TestMatrix/ext2-4k":                          notWired,
	"TestMatrix/ext3-1k-128":                      notWired,
	"TestMatrix/ext3-4k":                          notWired,
	"TestMatrix/ext4":                             notWired,
	"TestMatrix/ext4-1k":                          notWired,
	"TestMatrix/ext4-2k":                          notWired,
	"TestMatrix/ext4-64k":                         notWired,
	"TestMatrix/ext4-bigalloc":                    notWired,
	"TestMatrix/ext4-casefold":                    notWired,
	"TestMatrix/ext4-eainode":                     notWired,
	"TestMatrix/ext4-inline":                      notWired,
	"TestMatrix/ext4-largedir":                    notWired,
	"TestMatrix/ext4-metabg":                      notWired,
	"TestMatrix/ext4-no64bit":                     notWired,
	"TestMatrix/ext4-nocsum":                      notWired,
	"TestMatrix/ext4-noflex":                      notWired,
	"TestMatrix/ext4-nojournal":                   notWired,
	"TestNearlyFull/ext2-1k/blocks":               notWired,
	"TestNearlyFull/ext2-1k/inodes":               notWired,
	"TestNearlyFull/ext4-1k/blocks":               notWired,
	"TestNearlyFull/ext4-1k/inodes":               notWired,
	"TestNearlyFull/ext4/blocks":                  notWired,
	"TestNearlyFull/ext4/inodes":                  notWired,
	"TestPropertySequences/seed1-ext4":            notWired,
	"TestPropertySequences/seed10-ext4-no64bit":   notWired,
	"TestPropertySequences/seed11-ext4":           notWired,
	"TestPropertySequences/seed12-ext2-1k":        notWired,
	"TestPropertySequences/seed14-ext3-1k-128":    notWired,
	"TestPropertySequences/seed15-ext4-1k":        notWired,
	"TestPropertySequences/seed16-ext4-nojournal": notWired,
	"TestPropertySequences/seed17-ext4-metabg":    notWired,
	"TestPropertySequences/seed18-ext4-2k":        notWired,
	"TestPropertySequences/seed19-ext4-casefold":  notWired,
	"TestPropertySequences/seed2-ext2-1k":         notWired,
	"TestPropertySequences/seed20-ext4-no64bit":   notWired,
	"TestPropertySequences/seed3-ext4-inline":     notWired,
	"TestPropertySequences/seed4-ext3-1k-128":     notWired,
	"TestPropertySequences/seed5-ext4-1k":         notWired,
	"TestPropertySequences/seed6-ext4-nojournal":  notWired,
	"TestPropertySequences/seed7-ext4-metabg":     notWired,
	"TestPropertySequences/seed8-ext4-2k":         notWired,
	"TestPropertySequences/seed9-ext4-casefold":   notWired,
	"TestUncleanRefusedUnlessForce/state0":        notWired,
	"TestUncleanRefusedUnlessForce/state3":        notWired,
	"TestVFSConformance/AppendFile":               notWired,
	"TestVFSConformance/AttackDangling":           notWired,
	"TestVFSConformance/AttackDotDotPaths":        notWired,
	"TestVFSConformance/AttackLoops":              notWired,
	"TestVFSConformance/AttackNetworkOut":         notWired,
	"TestVFSConformance/AttackRootIsDotDot":       notWired,
	"TestVFSConformance/AttackRootIsSlash":        notWired,
	"TestVFSConformance/AttackSSHRelativeEscape":  notWired,
	"TestVFSConformance/AttackSSHToEtc":           notWired,
	"TestVFSConformance/AttackSwapLastComponent":  notWired,
	"TestVFSConformance/HasFile":                  notWired,
	"TestVFSConformance/InvalidPaths":             notWired,
	"TestVFSConformance/MakePath":                 notWired,
	"TestVFSConformance/ReadFile":                 notWired,
	"TestVFSConformance/Reader":                   statByName,
	"TestVFSConformance/Remover":                  notWired,
	"TestVFSConformance/ReplaceFile":              notWired,
	"TestVFSConformance/SetOwnership":             notWired,
	"TestVFSConformance/SetPermissions":           notWired,
	"TestVFSConformance/Symlinks":                 notWired,
}

const (
	// notWired: face.go's MakePath, AppendFile, ReplaceFile,
	// SetPermissions and SetOwnership still return ErrReadOnly at HEAD
	// (the engine's write methods exist but are not reached by vfs.FS).
	notWired = "vfs.FS write methods not wired to the write engine yet (face.go returns ErrReadOnly)"
	// statByName: Stat through a symlink names the target ("file"), not the
	// last element of the path asked for ("abs"), as vfstest and os.Stat do.
	statByName = "Stat(/links/abs) reports Name \"file\" (the target's), want \"abs\""
	// newNotInline: on an inline_data filesystem new small files and new
	// directories get extents (flags 0x80000) instead of inline data.
	newNotInline = "new small file and new directory are not written inline on inline_data"
)
