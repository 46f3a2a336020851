package xfs

// Writing XFS in place: design
//
// Status: the vfs.FS write operations (facewrite.go) run over the
// mechanism below and inject/diskimage opens XFS roots writable through its
// stage (OpenWritable). Built, each tested against xfs_repair -n and
// xfs_db: transactions (tx.go), free-space allocation and freeing
// (alloc.go over the generic per-AG btree of sbtree.go; freeing checks
// the refcount btree on reflink filesystems, refcount.go), inode
// allocation from existing and new chunks and inode freeing (ialloc.go,
// ifree.go), directory entries added, removed and repointed in every form
// with the conversions between them (dirblock.go, dirnode.go,
// dirremove.go, dirsf.go), file data appended and truncated as an extent
// list or a two-level bmap btree (filewrite.go, truncate.go), symlinks
// inline or remote, extended attributes in short form, one leaf block
// and a node over leaves (xattrwrite.go). Not yet: sparse-chunk
// fallback, bmap btrees of three or more levels, deeper attribute
// trees, the log commit.
//
// # Refusals, before the first write
//
// openWritable (writable.go) refuses, before any byte is written and with
// an error wrapping ErrUnsupportedFeature or ErrNeedsRecovery naming the
// cause:
//
//   - a log that is not clean, or an external log whose state cannot be
//     told: the engine writes only on top of a filesystem the kernel
//     cleanly unmounted (or xfs_repair left). Log recovery is not
//     implemented; the error says to mount the filesystem once or run
//     xfs_repair;
//   - a log-incompatible feature bit (logged xattrs): it is set only
//     while a kernel has the log in use;
//   - read-only-compatible bits the engine does not know. rmapbt is
//     maintained (rmap.go: every allocation and free updates the reverse
//     mapping; its blocks are allocation state, classAlloc, new ones
//     fresh). reflink is accepted: the engine allocates
//     only fresh extents and never shares one, so the refcount btree is
//     untouched; freeing reads it first (refcount.go) and refuses, at
//     that operation, to free an extent another file shares, since
//     dropping one reference is not written;
//   - a realtime subvolume, quota accounting (sb_qflags with an
//     accounting bit: the dquots would go stale), and large extent
//     counters (nrext64) until the inode layer writes them;
//   - incompatible bits the engine does not know (metadir and newer) are
//     already refused by Open.
//
// # Transactions
//
// Every change goes through a transaction (tx.go). A transaction reads a
// metadata buffer once (tx.buf) and hands out the same private copy to
// every later reader, so the changes of one step are seen by the next;
// while a transaction is open the FS's read path (readAt, cached) sees
// the transaction's buffers over the disk's bytes, so the read engine's
// lookups (a directory lookup, a bmap walk) see uncommitted changes. A new
// block (tx.newBuf) is zero-filled in memory and never read. Nothing is
// written until commit; abort drops the buffers and the disk is
// unchanged. Every failure (no space, a corrupt structure met on the way,
// a refused feature) is found while building the transaction in memory.
//
// On commit each dirty buffer is stamped by its kind (bufKind): on v5 the
// LSN field gets the transaction's LSN and the CRC32c is recomputed over
// the structure the kind names (the superblock's, AGF's, AGI's and
// AGFL's sector, a btree block, each modified inode of an inode cluster
// buffer). The LSN stamped is the log's last record (LogState.LastLSN),
// never ahead of the log the kernel finds at its next mount: the kernel's
// read verifiers refuse metadata whose LSN runs ahead of the log.
//
// # Write order, and why the log comes next
//
// Commit writes the buffers by class in three barrier groups (a Sync of
// the device between groups, when it has one; inject/diskimage/stage replays
// barriers as fsyncs):
//
//  1. fresh blocks (file data, new btree, directory and symlink blocks,
//     new inode chunks: nothing on disk references them yet) and the
//     allocation state marking them used (free-space btrees, AGFL, AGF,
//     inode btrees, AGI);
//  2. owners: inodes (a new inode from an existing chunk among them, so
//     the inode btrees call it used before it has a mode) and bmap btree
//     blocks pointing at the fresh blocks;
//  3. names: directory and attribute blocks naming the inodes of 2, and
//     the primary superblock's counters.
//
// Space and inodes are therefore marked used before anything references
// them, and a name is written after the inode it names. A batch of
// operations (batch.go) refines groups 2 and 3 into ranks (txorder.go):
// each operation's owners before its names, so a directory the batch made
// and a file made in it go in one transaction, the file's inode, then the
// directory naming it, then its parent naming the directory, a barrier
// between each; for one operation alone the ranks are the three groups.
// Inside a group the buffers are written by offset, adjacent ones as one
// write. Frees are
// deferred, as the kernel defers them (extent-free intents): a
// transaction that frees writes names (with its fresh blocks), then the
// owners that drop the references, then the allocation state returning
// the space and the superblock; and an operation that both frees and
// allocates (ReplaceFile of an existing file) commits two transactions,
// so freed space is never on disk as free while still referenced, nor
// reused before the references are gone. No barrier follows a
// transaction's last group: the next transaction's first group writes
// only blocks that are free on disk whatever part of it has landed.
//
// A crash at any point can leave only what xfs_repair calls leaks and
// stale counters (an inode or blocks marked used that nothing names, a
// link count above the names, AG and superblock counters off), never a
// block owned twice, a name pointing at a free inode or a link count
// below the names: TestCrashOrder cuts the write stream after every write
// and after every prefix of each barrier group reversed.
//
// What ordered in-place writes cannot give is atomicity inside a group:
// a btree split rewrites several blocks, and a crash between them leaves
// the AG's btrees inconsistent (the kernel's verifiers then shut the
// filesystem down; xfs_repair fixes it). In an injection the stage makes
// the whole injection all-or-nothing with respect to every failure found
// before Commit (ENOSPC, validation, refusals); only a crash during
// Commit's replay meets the window above. The ext engine closed the same
// window by committing through its journal, and the design here is the
// same: the next layer writes the transaction's dirty metadata buffers,
// whole, as buffer log items of one log record followed by a commit
// record at the log head (barrier), then the same ordered in-place writes
// as above (barrier), then an unmount record (barrier). A crash before
// the commit record leaves the old filesystem (plus bytes in free
// blocks); after it, the kernel's log recovery replays the record. The
// transaction layer already collects exactly what that needs: the whole
// buffers with their kinds (which become the buffer log items' types)
// and one LSN for all of them (the record's).
