package ext

import "github.com/guestinject/guestinject/vfs/ext/dirhash"

func init() {
	hashName = func(name []byte, v uint8, seed [4]uint32) (uint32, error) {
		major, _, err := dirhash.Hash(name, dirhash.Version(v), seed)
		return major, err
	}
	foldName = dirhash.Fold
}
