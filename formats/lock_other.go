//go:build !linux

package formats

import "os"

// lockImage is a no-op where open file description locks do not exist.
func lockImage(f *os.File, write bool) error { return nil }
