package xfs

// testOwner owns the blocks tests allocate without a file: on an rmapbt
// filesystem they are recorded as AG metadata (OWN_AG), which xfs_repair
// accepts for blocks no inode claims.
var testOwner = ownAG
