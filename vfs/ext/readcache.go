package ext

import (
	"github.com/guestinject/guestinject/internal/cache"

	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// Cache sizes: small and fixed, whatever the filesystem's size.
const (
	blockCacheEntries = 64
	inodeCacheEntries = 256
	descCacheEntries  = 256
	ownerEntries      = 1 << 14 // blocks remembered with the inode that uses them (writecheck.go)
)

// readCache holds an FS's bounded caches of what it read from the image:
// metadata blocks (FS.block), decoded inodes (FS.inode), group
// descriptors (FS.groupDesc), and, on a writable FS, the inode each
// recently read inode block belongs to (owners, for the checks of
// writecheck.go). Each LRU is safe for concurrent use: reads, under opMu
// held for reading, fill them in parallel; a write, under opMu held for
// writing, brings them in step with what it wrote when it commits
// (tx.refreshCaches). The LRUs themselves are made at Open and replaced
// (drop) only at Open or under opMu held for writing (reload). Cached
// blocks are read-only.
type readCache struct {
	blocks *cache.LRU[uint64, []byte]
	inodes *cache.LRU[uint32, *inode]
	descs  *cache.LRU[uint32, *layout.GroupDesc]
	owners *cache.LRU[uint64, blockOwner] // the inode each recently read inode block belongs to
}

// newReadCache returns empty caches.
func newReadCache() readCache {
	return readCache{
		blocks: cache.NewLRU[uint64, []byte](blockCacheEntries),
		inodes: cache.NewLRU[uint32, *inode](inodeCacheEntries),
		descs:  cache.NewLRU[uint32, *layout.GroupDesc](descCacheEntries),
		owners: cache.NewLRU[uint64, blockOwner](ownerEntries),
	}
}

// drop empties the block, inode and descriptor caches; owners is kept.
func (c *readCache) drop() {
	c.blocks = cache.NewLRU[uint64, []byte](blockCacheEntries)
	c.inodes = cache.NewLRU[uint32, *inode](inodeCacheEntries)
	c.descs = cache.NewLRU[uint32, *layout.GroupDesc](descCacheEntries)
}

// blockOwner is the inode a block was read for, and as what; other is
// set when the block was also read for another inode or as another kind
// (a cross-link: any write through it is refused).
type blockOwner struct {
	ino   uint32
	what  string // the f.block "what": "directory block", "extent node", ...
	other *blockOwner
}

// noteOwner remembers that block n was read as what for inode ino.
func (c *readCache) noteOwner(n uint64, ino uint32, what string) {
	c.owners.Update(n, func(o blockOwner, ok bool) blockOwner {
		shared := what == "xattr block" && o.what == what
		if ok && (o.ino != ino || o.what != what) && !shared && o.other == nil {
			o.other = &blockOwner{ino: ino, what: what}
			return o
		}
		if ok {
			return o
		}
		return blockOwner{ino: ino, what: what}
	})
}

// ownedElsewhere finds a block of [start, start+n) the engine read for
// another inode than ino, or for two inodes. The cost is the smaller of
// n and the number of blocks remembered.
func (c *readCache) ownedElsewhere(ino uint32, start, n uint64) (uint64, blockOwner, bool) {
	bad := func(o blockOwner) bool {
		return o.other != nil || (o.ino != ino && o.what != "xattr block")
	}
	if n > ownerEntries {
		return c.owners.Find(func(b uint64, o blockOwner) bool { return b >= start && b-start < n && bad(o) })
	}
	for b := start; b < start+n; b++ {
		if o, ok := c.owners.Get(b); ok && bad(o) {
			return b, o, true
		}
	}
	return 0, blockOwner{}, false
}

// forgetOwners drops what owners knows of blocks the transaction
// freed (commit): they may be reused for anything.
func (c *readCache) forgetOwners(runs []blockRun) {
	total := uint64(0)
	for _, r := range runs {
		total += r.n
	}
	if total > ownerEntries {
		c.owners.DeleteIf(func(b uint64) bool {
			for _, r := range runs {
				if b >= r.start && b-r.start < r.n {
					return true
				}
			}
			return false
		})
		return
	}
	for _, r := range runs {
		for b := r.start; b < r.start+r.n; b++ {
			c.owners.Delete(b)
		}
	}
}
