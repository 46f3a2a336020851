// Package dirhash computes the name hashes of ext3/ext4 htree-indexed
// directories (the dir_index feature), as the Linux kernel and e2fsprogs
// compute them, and the case folding that casefold directories apply to
// a name before hashing it.
//
// Everything here is a pure function of its arguments: no I/O, no global
// state. Names are raw bytes, as stored in directory entries.
//
// # Hash versions
//
// An htree root (dx_root) names the hash version its directory uses; a
// filesystem's superblock names the default (s_def_hash_version). The
// legacy, half-MD4 and TEA hashes each come in two variants that differ
// only in how a name byte of 0x80 or more enters the computation: as a
// signed char (sign-extended) or as an unsigned char. Which variant a
// filesystem uses is recorded in the superblock flags (signed/unsigned
// directory hash); the on-disk dx_root stores the base version (0..2)
// and the reader adds 3 when the filesystem is flagged unsigned.
//
// # Seed
//
// The 128-bit seed is the superblock's s_hash_seed read as four
// little-endian 32-bit words. An all-zero seed selects the default
// initial state, 0x67452301 0xefcdab89 0x98badcfe 0x10325476. The
// legacy hash ignores the seed.
package dirhash

import (
	"fmt"

	"github.com/guestinject/guestinject/errs"
)

// Version is a directory hash algorithm, numbered as in the ext4 on-disk
// format (s_def_hash_version and the dx_root hash_version field, the
// unsigned variants as the kernel numbers them internally).
type Version uint8

// The hash versions.
const (
	Legacy          Version = 0
	HalfMD4         Version = 1
	Tea             Version = 2
	LegacyUnsigned  Version = 3
	HalfMD4Unsigned Version = 4
	TeaUnsigned     Version = 5
	SipHash         Version = 6
)

// String names the version as e2fsprogs' tools do.
func (v Version) String() string {
	switch v {
	case Legacy:
		return "legacy"
	case HalfMD4:
		return "half_md4"
	case Tea:
		return "tea"
	case LegacyUnsigned:
		return "legacy_unsigned"
	case HalfMD4Unsigned:
		return "half_md4_unsigned"
	case TeaUnsigned:
		return "tea_unsigned"
	case SipHash:
		return "siphash"
	}
	return fmt.Sprintf("hash_version_%d", uint8(v))
}

// ErrUnsupportedHash is wrapped by the error Hash returns for SipHash
// (used only by directories that are both encrypted and casefolded, whose
// names this package cannot see in clear) and for unknown versions.
var ErrUnsupportedHash = errs.New(errs.ErrUnsupported, "unsupported directory hash version")

// EOF32 is the kernel's EXT4_HTREE_EOF_32BIT, the end-of-directory
// position of 32-bit readdir cookies. No real name may hash to it
// (shifted left by one), so such a hash is moved one step down.
const EOF32 = 0x7fffffff

// defaultSeed is the initial state used when the seed is all zero (the
// MD4 initial chaining values).
var defaultSeed = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// Hash returns the major and minor hash of name for version v with the
// given seed. The major hash always has its low bit clear (the htree
// uses that bit to mark hash collisions that continue in the next
// block). The legacy hashes have no minor hash and return 0 for it.
//
// Hash does no case folding: for a casefold directory, pass the result
// of Fold (or the raw name when Fold fails; see Fold).
func Hash(name []byte, v Version, seed [4]uint32) (major, minor uint32, err error) {
	state := defaultSeed
	if seed != ([4]uint32{}) {
		state = seed
	}
	switch v {
	case Legacy, LegacyUnsigned:
		major = legacyHash(name, v == LegacyUnsigned)
	case HalfMD4, HalfMD4Unsigned:
		major, minor = halfMD4Hash(name, v == HalfMD4Unsigned, state)
	case Tea, TeaUnsigned:
		major, minor = teaHash(name, v == TeaUnsigned, state)
	default:
		return 0, 0, fmt.Errorf("dirhash: %v (%d): %w", v, uint8(v), ErrUnsupportedHash)
	}
	return finishMajor(major), minor, nil
}

// finishMajor clears the low bit of a major hash and moves the one value
// reserved for end-of-directory one step down, as the kernel does.
func finishMajor(major uint32) uint32 {
	major &^= 1
	if major == EOF32<<1 {
		major = (EOF32 - 1) << 1
	}
	return major
}

// charValue returns a name byte as the hash functions see it: a signed
// char sign-extended to 32 bits, or an unsigned char.
func charValue(b byte, unsigned bool) uint32 {
	if unsigned {
		return uint32(b)
	}
	return uint32(int32(int8(b)))
}

// legacyHash is the original dx_hack_hash of ext3's first htree code.
func legacyHash(name []byte, unsigned bool) uint32 {
	h0, h1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, b := range name {
		h := h1 + (h0 ^ charValue(b, unsigned)*7152373)
		if h&0x80000000 != 0 {
			h -= 0x7fffffff
		}
		h1, h0 = h0, h
	}
	return h0 << 1
}

// packName fills words with the next bytes of name, four bytes per word,
// big-end first, each word starting from a padding value derived from
// the remaining length of the name. Words past the end of the name hold
// the padding alone. It returns the number of bytes consumed.
func packName(name []byte, words []uint32, unsigned bool) int {
	n := len(name)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	if n > 4*len(words) {
		n = 4 * len(words)
	}
	val := pad
	w := 0
	for i := 0; i < n; i++ {
		val = charValue(name[i], unsigned) + val<<8
		if i%4 == 3 {
			words[w] = val
			w++
			val = pad
		}
	}
	if w < len(words) {
		words[w] = val
		w++
	}
	for ; w < len(words); w++ {
		words[w] = pad
	}
	return n
}

// halfMD4Hash runs the reduced MD4 compression over the name in 32-byte
// chunks. The major hash is the second state word, the minor the third.
func halfMD4Hash(name []byte, unsigned bool, state [4]uint32) (uint32, uint32) {
	var in [8]uint32
	for len(name) > 0 {
		n := packName(name, in[:], unsigned)
		halfMD4Transform(&state, &in)
		name = name[n:]
	}
	return state[1], state[2]
}

// teaHash runs the TEA block cipher in a Davies-Meyer construction over
// the name in 16-byte chunks. The major hash is the first state word,
// the minor the second.
func teaHash(name []byte, unsigned bool, state [4]uint32) (uint32, uint32) {
	var in [4]uint32
	for len(name) > 0 {
		n := packName(name, in[:], unsigned)
		teaTransform(&state, &in)
		name = name[n:]
	}
	return state[0], state[1]
}

// teaDelta is the TEA key schedule constant (2^32 / golden ratio).
const teaDelta = 0x9e3779b9

// teaTransform encrypts the first two state words with 16 TEA cycles
// keyed by in and adds the result back into the state.
func teaTransform(state *[4]uint32, in *[4]uint32) {
	var sum uint32
	b0, b1 := state[0], state[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for range 16 {
		sum += teaDelta
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	state[0] += b0
	state[1] += b1
}
