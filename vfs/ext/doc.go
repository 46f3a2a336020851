// Package ext reads and writes ext2, ext3 and ext4 filesystems from an
// io.ReaderAt (an io.WriterAt too, to write), in process: no mount, no
// kernel, no e2fsprogs. writeorder.go describes the write engine.
//
// Open reads the superblock and nothing else; group descriptors, inodes,
// directory and extent blocks are read when a lookup first needs them and
// kept in small bounded caches, so the cost of a lookup does not depend on
// the size of the filesystem. Every number read from the image is bounded
// before use, checksums are verified where the filesystem has them, and a
// feature the engine cannot read safely is refused at Open.
//
// The code is split in three layers: the on-disk structures live in package
// layout; the mechanism (group descriptors, inodes, block maps, extent
// trees, directories and hash trees, extended attributes, inline data, the
// journal superblock) reads them; the vfs face (face.go) serves vfs.FS,
// vfs.Reader and vfs.XattrReader on top, with path resolution delegated to
// vfs.Resolve over inode numbers.
//
// An open FS holds its geometry, its read caches (readCache,
// readcache.go) and the write engine's state (writeState, writestate.go);
// a write runs as one transaction (tx, tx.go) whose inode copies
// (txInodes) and allocation bookkeeping (txSpace) commit together
// (txcommit.go), through the journal when there is one (jcommit.go and
// package internal/jbd2).
package ext
