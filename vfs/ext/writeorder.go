package ext

// Write order
//
// Every change to the filesystem goes through one transaction (tx.go) per
// vfs operation. A transaction first plans and builds everything in
// memory — allocations in private copies of the bitmaps, inodes in private
// copies, new extent trees, directory blocks, descriptors and the
// superblock with their checksums — so that any failure (no space, a
// corrupt structure met on the way, a refused feature) leaves the image
// byte for byte unchanged. Only then does commit write, in this order:
//
//  1. data blocks (file content, slow symlink targets);
//  2. extent tree nodes and indirect blocks;
//  3. xattr blocks;
//  4. inode table blocks (the inodes pointing at 1-3);
//  5. directory blocks (the entries naming the inodes of 4);
//  6. block and inode bitmaps;
//  7. group descriptors (free counts, flags, bitmap checksums);
//  8. the primary superblock (free counts, s_wtime, s_kbytes_written).
//
// Between two of steps 1-6, and after step 8, the transaction calls the
// device's Sync when it has one (steps 6-8 form one batch: a crash
// inside it leaves counters and bitmap checksums e2fsck recomputes): a real barrier on a device written
// directly, a logged barrier in inject/diskimage/stage that Commit turns into
// a flush of the image. So the order holds across a power loss, not only
// a killed process, and one operation's bitmaps reach the disk before the
// next operation writes data into a block they freed.
//
// Replacing a file's content gives it new blocks (the old ones are freed
// at step 6): no block the on-disk inode names is overwritten, so a crash
// inside the operation leaves the old content or the new, never a mix.
//
// Blocks freed by a transaction stay marked in use until step 6 and are
// never reused by the same transaction, so nothing written in steps 1-5
// lands on a block that on-disk metadata still references, and a
// rewritten extent tree goes to fresh blocks. A crash between steps can
// therefore leave, at worst, blocks or inodes marked in use that nothing
// references, an inode no directory names, or counters e2fsck recomputes:
// never two files sharing a block, nor one file exposing another's data.
// (A removal writes the freed inode before the directory block that drops
// its name: a crash in between leaves a name e2fsck removes, with the
// blocks still marked in use.)
//
// Journaled commit (jcommit.go, vfs/ext/jbd2)
//
// On an image, every transaction of an injection is held in memory
// (inject/diskimage/stage) and the order above is not what reaches the disk
// when the filesystem has an internal jbd2 journal. Image.Commit asks
// JournalCommit for one jbd2 transaction holding the whole injection,
// built from the final contents of every block the injection wrote:
//
//	A. blocks this open allocated that were free at open (new file data,
//	   new extent, directory and indirect blocks: nothing the old
//	   filesystem references; data=ordered, extended to every such block)
//	   in place; the on-disk superblock with needs_recovery set; the log
//	   from s_first: descriptor blocks (tags in the journal's format,
//	   csum v2/v3 tails and tag checksums, escaped copies), the copies of
//	   every other written block, metadata or data, the commit block
//	   (crc32c, timestamp), numbered with the journal's s_sequence;
//	   flush;
//	B. the journal superblock pointing at the log (s_start, s_sequence):
//	   from here the transaction is live; flush;
//	C. the logged blocks in place (checkpoint; the superblock copy keeps
//	   needs_recovery); flush;
//	D. the journal superblock empty (s_start 0, s_sequence + 1) and the
//	   new superblock without needs_recovery; the caller's final flush
//	   (until D is durable the log replays to the same new filesystem).
//
// A crash before B is durable leaves the old filesystem (needs_recovery
// with an empty log is only cleared by e2fsck or the kernel); from B on,
// the kernel's and e2fsck's replay (and ours, replay*.go) give the whole
// injection; a crash inside D gives the new filesystem either way.
//
// A journal that needed recovery at open (replayed in memory, see
// replay_write.go) keeps its log on disk until D: the transaction is
// appended after the log's last commit block, numbered after its last
// transaction (wrapping around the circular log), with revoke records
// for every block the old log holds that A writes in place; A ends
// before the commit block, flush, and the commit block is the commit
// point (the journal superblock already leads to the old log). A crash
// before it gives the old log's replay, the filesystem as it was for
// every reader; after it, the old transactions and the injection.
//
// Not journaled, written in the order above with its barriers, and said
// through Options.Warn (ErrNotJournaled): no journal (ext2, ^has_journal:
// ErrNoJournal, no warning), an external journal, a journal this writer
// refuses (v1, COMPAT_CHECKSUM, fast-commit blocks, unknown features), a
// transaction larger than the free part of the log, a grown filesystem,
// or staging turned off (diskimage.Options.StageLimit < 0).
