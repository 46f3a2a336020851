package xfs

// Writing XFS in place: design
//
// Status: the mechanism layer is being built bottom-up and is reachable
// only through the package's internal API (openWritable); Open stays
// read-only and inject/image keeps refusing writable XFS opens. Built so
// far, each tested against xfs_repair -n and xfs_db: transactions
// (tx.go), free-space allocation and freeing (alloc.go over the generic
// per-AG btree of sbtree.go), inode allocation from existing and new
// chunks (ialloc.go), directory entries added, removed and repointed in
// every form with the conversions between them (dirblock.go, dirnode.go,
// dirremove.go, dirsf.go), and appending file data as an extent list or
// a two-level bmap btree (filewrite.go). Not yet: sparse-chunk fallback,
// bmap btrees of three or more levels, attribute writes, the log commit.
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
//   - read-only-compatible bits the engine does not know, and those it
//     knows but does not maintain: rmapbt (every allocation would need a
//     reverse-mapping record). reflink is accepted: the engine allocates
//     only fresh extents and never shares one, so the refcount btree is
//     untouched; freeing blocks on a reflink filesystem is refused until
//     the free path checks the refcount btree for shared extents;
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
// Commit writes the buffers by class, each class ended by a barrier
// (Sync, when the device has one; inject/image/stage replays barriers as
// fsyncs):
//
//  1. fresh blocks: file data and every block allocated by this
//     transaction (new btree blocks, new directory blocks, new inode
//     chunks), which no on-disk metadata references yet;
//  2. allocation state: free-space btrees, AGFL and AGF, inode btrees and
//     AGI, which mark the fresh space and inodes used;
//  3. owners: inode cluster buffers and block-map btree blocks that point
//     at fresh blocks;
//  4. names: directory and attribute blocks naming the inodes of 3;
//  5. the primary superblock's counters.
//
// Space and inodes are therefore marked used before anything references
// them, and a name is written after the inode it names. Frees are
// deferred, as the kernel defers them (extent-free intents): a
// transaction that drops references is committed before the transaction
// that returns the space (commitFree writes classes 4, 3, then 2), so
// freed space is never on disk as free while still referenced.
//
// What ordered in-place writes cannot give is atomicity inside a class: a
// btree split rewrites several blocks, and a crash between them leaves
// the AG's btrees inconsistent (the kernel's verifiers then shut the
// filesystem down; xfs_repair fixes it). The ext engine solved the same
// problem by committing through its journal, and the design here is the
// same: the next layer writes the transaction's dirty metadata buffers,
// whole, as buffer log items of one log record followed by a commit
// record at the log head (barrier), then the same ordered in-place writes
// as above (barrier), then an unmount record (barrier). A crash before
// the commit record leaves the old filesystem (plus bytes in free
// blocks); after it, the kernel's log recovery replays the record. The
// transaction layer already collects exactly what that needs: the whole
// buffers with their kinds (which become the buffer log items' types)
// and one LSN for all of them (the record's). Until that layer exists the
// writer stays unreachable from the CLI.
