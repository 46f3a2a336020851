package xfs

// testOwner owns the blocks tests allocate without a file, on
// filesystems without rmapbt (where the owner is not recorded): on an
// rmapbt filesystem xfs_repair would find OWN_AG blocks that are neither
// btree nor AGFL blocks.
var testOwner = ownAG
