// Package xfs reads and writes XFS filesystems (v4 and v5) from an
// io.ReaderAt, in process: no mount, no kernel, no xfsprogs.
//
// Open reads and validates the superblock and the few log sectors that
// tell a clean log from one needing recovery, and nothing else; inodes,
// block maps, directory and attribute blocks are read when a lookup needs
// them and kept in a small bounded cache, so the cost of a lookup does not
// depend on the size of the filesystem. Every number read from the image
// is bounded before use, every v5 structure's CRC32c is verified, and a
// feature the engine cannot read safely is refused at Open, naming it.
//
// The on-disk structures live in package layout; the mechanism (inodes,
// block maps and bmap btrees, directories in their five forms and the
// name hash, extended attributes, symlinks, the log head) reads them; the
// vfs face (face.go) serves vfs.FS, vfs.Reader and vfs.XattrReader on
// top, with path resolution delegated to vfs.Resolve over inode numbers.
//
// A filesystem opened by Open is read-only: every write method fails with
// vfs.ErrReadOnly. OpenWritable (writable.go) first refuses what the
// engine cannot write safely, naming it, then serves the vfs write
// operations (facewrite.go, facerename.go) through transactions (tx.go)
// whose blocks reach the device in the order writeorder.go designs, with
// barriers between its ranks; writeorder.go is the design of writing in
// place (refusals, transactions, space, order, what a crash leaves).
// grow.go grows the filesystem offline as xfs_growfs grows it online.
package xfs
