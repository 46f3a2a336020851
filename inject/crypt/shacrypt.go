package crypt

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt ($5$ sha256-crypt and $6$ sha512-crypt), as Ulrich Drepper's
// specification defines it and glibc and libxcrypt make it. The rounds
// loop hashes a hundred bytes or so thousands of times, so it reuses one
// digest and fixed buffers: no allocation per round (the library used
// before allocated twice per round, a third of the time of a hash).

// shaVariant is what differs between sha256-crypt and sha512-crypt.
type shaVariant struct {
	prefix string
	new    func() hash.Hash
	size   int
	// order lists the digest bytes in the order the output encodes them,
	// three to a group of four characters, the last group shorter.
	order []int
}

var (
	sha512Crypt = shaVariant{"$6$", sha512.New, sha512.Size, shaOrder(sha512.Size, []int{0, 1, 2}, []int{1, 2, 0}, []int{2, 0, 1})}
	sha256Crypt = shaVariant{"$5$", sha256.New, sha256.Size, shaOrder(sha256.Size, []int{0, 1, 2}, []int{2, 0, 1}, []int{1, 2, 0})}
)

// shaOrder builds the output order: group k of the n/3 full groups takes
// the bytes k, k+n/3 and k+2n/3, rotated as rot[k%3] says; the bytes left
// over (one for sha512, two for sha256) end the output, highest first.
func shaOrder(n int, rot ...[]int) []int {
	third := n / 3
	var out []int
	for k := 0; k < third; k++ {
		idx := [3]int{k, k + third, k + 2*third}
		r := rot[k%3]
		out = append(out, idx[r[0]], idx[r[1]], idx[r[2]])
	}
	for i := n - 1; i >= 3*third; i-- {
		out = append(out, i)
	}
	return out
}

// shaCrypt computes the hash for setting ("$6$salt", "$6$rounds=N$salt",
// or a whole hash), the salt cut at its first '$' and to 16 characters; a
// setting that names rounds keeps them in the result. Like libxcrypt it
// refuses rounds outside MinSHARounds..MaxSHARounds or with a leading
// zero, and a setting holding a space, a control or non-ASCII byte or one
// of *!:;\.
func (v shaVariant) shaCrypt(plain, setting string) (string, error) {
	for _, c := range []byte(setting) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`*!:;\`, c) >= 0 {
			return "", fmt.Errorf("character %q in the setting", c)
		}
	}
	rest := strings.TrimPrefix(setting, v.prefix)
	rounds, named := DefaultSHARounds, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(num, 10, 32)
		if !found || err != nil || num[0] == '0' || n < MinSHARounds || n > MaxSHARounds {
			return "", fmt.Errorf("rounds %q (want %d..%d, no leading zero)", num, MinSHARounds, MaxSHARounds)
		}
		rounds, named, rest = int(n), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(plain), []byte(salt)
	h := v.new()
	var bufA, bufB, bufC, bufDP, bufDS [sha512.Size]byte
	sum := func(buf *[sha512.Size]byte) []byte { return h.Sum(buf[:0]) }

	// B = H(P S P)
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := sum(&bufB)

	// A = H(P S, B repeated over len(P), then per bit of len(P): B or P)
	h.Reset()
	h.Write(p)
	h.Write(s)
	for n := len(p); n > 0; n -= v.size {
		h.Write(b[:min(n, v.size)])
	}
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := sum(&bufA)

	// P' = H(P repeated len(P) times), repeated over len(P)
	h.Reset()
	for range p {
		h.Write(p)
	}
	dp := sum(&bufDP)
	pp := make([]byte, len(p))
	for i := 0; i < len(p); i += v.size {
		copy(pp[i:], dp)
	}

	// S' = H(S repeated 16+A[0] times), cut to len(S)
	h.Reset()
	for i := 0; i < 16+int(a[0]); i++ {
		h.Write(s)
	}
	ds := sum(&bufDS)
	sp := append([]byte(nil), ds[:len(s)]...)

	c := bufC[:v.size]
	copy(c, a)
	for i := 0; i < rounds; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(pp)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sp)
		}
		if i%7 != 0 {
			h.Write(pp)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pp)
		}
		h.Sum(c[:0])
	}

	out := make([]byte, 0, len(v.prefix)+len("rounds=999999999$")+len(salt)+1+(v.size*8+5)/6)
	out = append(out, v.prefix...)
	if named {
		out = append(out, "rounds="...)
		out = strconv.AppendInt(out, int64(rounds), 10)
		out = append(out, '$')
	}
	out = append(out, salt...)
	out = append(out, '$')
	for i := 0; i < len(v.order); i += 3 {
		var w uint32
		n := min(3, len(v.order)-i)
		for j := 0; j < n; j++ {
			w = w<<8 | uint32(c[v.order[i+j]])
		}
		for range n + 1 {
			out = append(out, itoa64[w&63])
			w >>= 6
		}
	}
	return string(out), nil
}
