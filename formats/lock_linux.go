package formats

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/guestinject/guestinject/formats/diskerr"
)

// qemu's image locking (block/file-posix.c): each permission bit i is
// represented by two bytes of the image file, locked with shared
// open-file-description locks. Byte 100+i is locked by every user holding
// permission i; byte 200+i by every user that does NOT let others have it.
// A user may take permission i only if nobody locks 200+i, and may refuse to
// share it only if nobody locks 100+i.
const (
	lockPermBase   = 100
	lockSharedBase = 200

	permConsistentRead = 1 << 0
	permWrite          = 1 << 1
	permWriteUnchanged = 1 << 2
	permResize         = 1 << 3
	permAll            = permConsistentRead | permWrite | permWriteUnchanged | permResize
)

var permNames = []string{"consistent read", "write", "write unchanged", "resize"}

// lockImage takes qemu-style locks. A reader holds "consistent read" and
// lets nobody write or resize (like qemu-img). A writer holds read, write
// and resize and shares none of them: unlike a qemu writer, it also refuses
// an image someone is reading — notably a base image that a running VM
// reads through its overlay (qemu itself shares writes on backing files),
// since rewriting a base under running overlays corrupts them.
func lockImage(f *os.File, write bool) error {
	perm, shared := uint(permConsistentRead), uint(permAll&^(permWrite|permResize))
	if write {
		perm |= permWrite | permResize
		shared = permWriteUnchanged
	}
	for i := range permNames {
		if perm&(1<<i) != 0 {
			if err := ofdLock(f, lockPermBase+int64(i)); err != nil {
				return err
			}
		}
		if shared&(1<<i) == 0 {
			if err := ofdLock(f, lockSharedBase+int64(i)); err != nil {
				return err
			}
		}
	}
	for _, i := range []int{1, 3, 0, 2} { // report "write" first
		name := permNames[i]
		if perm&(1<<i) != 0 && heldByOther(f, lockSharedBase+int64(i)) {
			return &diskerr.Error{What: fmt.Sprintf("another process does not share the %q permission", name), Offset: -1, Err: ErrInUse}
		}
		if shared&(1<<i) == 0 && heldByOther(f, lockPermBase+int64(i)) {
			return &diskerr.Error{What: fmt.Sprintf("another process holds the %q permission", name), Offset: -1, Err: ErrInUse}
		}
	}
	return nil
}

// unlockImage drops every lock lockImage takes on f's open file
// description. Close alone is not enough: a child forked by another
// goroutine at that moment shares the description (until its exec closes
// its copy of the descriptor), and the locks belong to the description.
func unlockImage(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: lockPermBase, Len: lockSharedBase + int64(len(permNames)) - lockPermBase}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		return fmt.Errorf("unlock bytes %d-%d: %w", lk.Start, lk.Start+lk.Len-1, err)
	}
	return nil
}

func ofdLock(f *os.File, off int64) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: off, Len: 1}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return &diskerr.Error{What: fmt.Sprintf("lock byte %d", off), Offset: -1, Err: ErrInUse}
	}
	if err != nil {
		return fmt.Errorf("lock byte %d: %w", off, err)
	}
	return nil
}

// heldByOther reports whether another open file description holds a lock
// on byte off (an exclusive lock would conflict).
func heldByOther(f *os.File, off int64) bool {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false
	}
	return lk.Type != unix.F_UNLCK
}
