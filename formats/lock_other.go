//go:build !linux

package formats

import "os"

// lockImage is a no-op where open file description locks do not exist.
func lockImage(f *os.File, write bool) error { return nil }

// unlockImage is a no-op: lockImage took nothing.
func unlockImage(f *os.File) error { return nil }
