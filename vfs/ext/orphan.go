package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/guestinject/guestinject/errs"
	"github.com/guestinject/guestinject/vfs/ext/internal/layout"
)

// ErrOrphans: the filesystem holds orphan inodes (unlinked while open, or
// being truncated) that the kernel would clean up at mount. The engine
// does not process them; e2fsck does.
var ErrOrphans = errs.NewForceable(errs.ErrUnclean, "ext: filesystem has orphan inodes")

// Orphan limits: how far the s_last_orphan chain is followed and how many
// orphan_file blocks are read before counting stops.
const (
	maxOrphanChain  = 1 << 16
	maxOrphanBlocks = 1 << 12
)

// Orphan file block tail (struct ext4_orphan_block_tail), little-endian,
// in the last 8 bytes of each block.
const (
	orphanTailSize  = 8
	orphanMagic     = 0x0B10CA04
	orphanMagicFrom = 8 // bytes from the end of the block
)

// checkOrphans refuses a filesystem with orphan inodes, in the
// s_last_orphan list or in the orphan file.
func (f *FS) checkOrphans() error {
	n, more, err := f.countOrphanList()
	if err != nil {
		return err
	}
	m, err := f.countOrphanFile()
	if err != nil {
		return err
	}
	if n+m == 0 {
		return f.clearOrphanPresent()
	}
	count := fmt.Sprint(n + m)
	if more {
		count = "at least " + count
	}
	return fmt.Errorf("%w: %s orphan inodes (%d in the s_last_orphan list, %d in the orphan file); run e2fsck", ErrOrphans, count, n, m)
}

// countOrphanList follows s_last_orphan through the inodes' dtime links.
// more reports a chain longer than the walk follows.
func (f *FS) countOrphanList() (n int, more bool, err error) {
	seen := make(map[uint32]bool)
	for ino := f.sb.LastOrphan; ino != 0; n++ {
		if n == maxOrphanChain {
			return n, true, nil
		}
		if ino > f.sb.InodesCount || seen[ino] {
			return n, false, corrupt("orphan list", uint64(ino), 0, -1, "link %d of the s_last_orphan chain names inode %d (out of range or a loop)", n, ino)
		}
		seen[ino] = true
		rec, _, err := f.inodeRecord(ino)
		if err != nil {
			return n, false, err
		}
		raw, err := layout.DecodeInode(rec)
		if err != nil {
			return n, false, err
		}
		ino = raw.Dtime
	}
	return n, false, nil
}

// countOrphanFile counts the entries of the orphan file (orphan_file).
// The kernel sets orphan_present whenever the file may hold entries (at
// a read-write mount) and clears it only when it is empty, so without the
// flag the file is not read: an open costs the same whatever its size.
func (f *FS) countOrphanFile() (int, error) {
	if !f.sb.FeatureCompat.Has(layout.CompatOrphanFile) || !f.sb.FeatureROCompat.Has(layout.ROCompatOrphanPresent) {
		return 0, nil
	}
	in, err := f.inode(f.sb.OrphanFileInum)
	if err != nil {
		return 0, err
	}
	d, err := f.openData(in)
	if err != nil {
		return 0, err
	}
	bs := f.geo.blockSize
	nblocks := min(in.size/bs, maxOrphanBlocks)
	buf := make([]byte, bs)
	total := 0
	for i := int64(0); i < nblocks; i++ {
		if n, err := d.ReadAt(buf, i*bs); n < len(buf) {
			return 0, fmt.Errorf("ext: reading orphan file block %d: %w", i, errors.Join(err, io.ErrUnexpectedEOF))
		}
		if m := binary.LittleEndian.Uint32(buf[len(buf)-orphanMagicFrom:]); m != orphanMagic {
			return 0, corrupt("orphan file block", uint64(i), in.num, -1, "tail magic %#x", m)
		}
		for off := 0; off+4 <= len(buf)-orphanTailSize; off += 4 {
			if binary.LittleEndian.Uint32(buf[off:]) != 0 {
				total++
			}
		}
	}
	return total, nil
}

// clearOrphanPresent clears orphan_present when the orphan file turned
// out empty, as the kernel does at a clean unmount (e2fsck -n flags the
// stale bit as an error). The change is pending (replay_write.go): the
// first commit writes it, a refusal or a read-only open never does.
func (f *FS) clearOrphanPresent() error {
	if !f.sb.FeatureROCompat.Has(layout.ROCompatOrphanPresent) {
		return nil
	}
	return f.editSuper("clearing orphan_present", func(sb *layout.Superblock) {
		sb.FeatureROCompat &^= layout.ROCompatOrphanPresent
	})
}
