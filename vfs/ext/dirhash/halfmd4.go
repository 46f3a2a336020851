package dirhash

import "math/bits"

// The half-MD4 transform is MD4's compression function cut down to eight
// message words and eight steps per round (three rounds), with MD4's
// round constants and boolean functions.

const (
	md4K2 = 0x5a827999 // round 2 additive constant (sqrt 2)
	md4K3 = 0x6ed9eba1 // round 3 additive constant (sqrt 3)
)

// md4Round describes one round: its boolean function, additive constant,
// the message word used at each step and the rotation of each step
// (which repeats with period four).
type md4Round struct {
	f     func(x, y, z uint32) uint32
	k     uint32
	word  [8]uint8
	shift [4]uint8
}

var md4Rounds = [3]md4Round{
	{md4Select, 0, [8]uint8{0, 1, 2, 3, 4, 5, 6, 7}, [4]uint8{3, 7, 11, 19}},
	{md4Majority, md4K2, [8]uint8{1, 3, 5, 7, 0, 2, 4, 6}, [4]uint8{3, 5, 9, 13}},
	{md4Parity, md4K3, [8]uint8{3, 7, 2, 6, 1, 5, 0, 4}, [4]uint8{3, 9, 11, 15}},
}

// md4Select is MD4's F: for each bit, y where x is set, else z.
func md4Select(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }

// md4Majority is MD4's G: for each bit, the value at least two of x, y,
// z share.
func md4Majority(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }

// md4Parity is MD4's H.
func md4Parity(x, y, z uint32) uint32 { return x ^ y ^ z }

// halfMD4Transform mixes in into state. Step s of a round updates
// register (4-s)%4 (a, d, c, b, a, d, c, b) from the other three taken in
// cyclic order after it.
func halfMD4Transform(state *[4]uint32, in *[8]uint32) {
	r := *state
	for _, rd := range md4Rounds {
		for s := range 8 {
			t := (4 - s%4) % 4
			x := r[(t+1)%4]
			y := r[(t+2)%4]
			z := r[(t+3)%4]
			r[t] = bits.RotateLeft32(r[t]+rd.f(x, y, z)+in[rd.word[s]]+rd.k, int(rd.shift[s%4]))
		}
	}
	for i := range state {
		state[i] += r[i]
	}
}
