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
