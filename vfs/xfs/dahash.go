package xfs

import "math/bits"

// daHash is the name hash XFS orders directory and attribute btrees by:
// the bytes are folded in groups of four, each group mixed into the
// running value rotated left by 28 bits (7 per byte).
func daHash(name []byte) uint32 {
	var h uint32
	for len(name) >= 4 {
		h = uint32(name[0])<<21 ^ uint32(name[1])<<14 ^ uint32(name[2])<<7 ^ uint32(name[3]) ^ bits.RotateLeft32(h, 7*4)
		name = name[4:]
	}
	switch len(name) {
	case 3:
		return uint32(name[0])<<14 ^ uint32(name[1])<<7 ^ uint32(name[2]) ^ bits.RotateLeft32(h, 7*3)
	case 2:
		return uint32(name[0])<<7 ^ uint32(name[1]) ^ bits.RotateLeft32(h, 7*2)
	case 1:
		return uint32(name[0]) ^ bits.RotateLeft32(h, 7)
	}
	return h
}

// asciiLower folds ASCII upper case, as XFS's ascii-ci directories do.
func asciiLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// dirHash hashes a directory entry name as the filesystem does: with
// ASCII case folding on an ascii-ci filesystem.
func (f *FS) dirHash(name []byte) uint32 {
	if !f.geo.asciiCI {
		return daHash(name)
	}
	l := make([]byte, len(name))
	for i, c := range name {
		l[i] = asciiLower(c)
	}
	return daHash(l)
}

// nameEqual compares a stored directory name with the one looked up.
func (f *FS) nameEqual(stored []byte, name string) bool {
	if len(stored) != len(name) {
		return false
	}
	if !f.geo.asciiCI {
		return string(stored) == name
	}
	for i := range stored {
		if asciiLower(stored[i]) != asciiLower(name[i]) {
			return false
		}
	}
	return true
}
