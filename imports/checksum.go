package imports

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Checksum is what a source is verified against, and what it hashed to.
type Checksum struct {
	Algo string `json:"algo"` // md5, sha1, sha256, sha512
	Want string `json:"expected"`
	Got  string `json:"computed,omitempty"`
	From string `json:"from,omitempty"` // the checksum file's line, when one was used
}

var hexLen = map[string]int{"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}

func newHash(algo string) hash.Hash {
	switch algo {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// ParseChecksum reads ALGO:HEX (md5, sha1, sha256 or sha512).
func ParseChecksum(s string) (*Checksum, error) {
	algo, h, ok := strings.Cut(s, ":")
	algo = strings.ToLower(algo)
	if !ok || hexLen[algo] == 0 {
		return nil, fmt.Errorf("checksum %q: want ALGO:HEX with ALGO md5, sha1, sha256 or sha512", s)
	}
	return newChecksum(algo, h)
}

func newChecksum(algo, h string) (*Checksum, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	if len(h) != hexLen[algo] {
		return nil, fmt.Errorf("%s checksum %q: want %d hex digits", algo, h, hexLen[algo])
	}
	if _, err := hex.DecodeString(h); err != nil {
		return nil, fmt.Errorf("%s checksum %q: not hexadecimal", algo, h)
	}
	return &Checksum{Algo: algo, Want: h}, nil
}

// MaxChecksumFile bounds a checksum file.
const MaxChecksumFile = 1 << 20

// FromChecksumFile finds name's checksum in a checksum file: the GNU
// coreutils form ("HEX  NAME", "HEX *NAME"; the algorithm from the digest
// length) as in SHA256SUMS, or the BSD tagged form ("SHA256 (NAME) = HEX")
// as in Fedora's *-CHECKSUM files; PGP armour and comments are skipped.
// With name "" (stdin) the file must hold exactly one checksum.
func FromChecksumFile(b []byte, name string) (*Checksum, error) {
	var found []*Checksum
	var all int
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		algo, h, file, ok := checksumLine(line)
		if !ok {
			continue
		}
		all++
		if name != "" && file != name {
			continue
		}
		c, err := newChecksum(algo, h)
		if err != nil {
			return nil, err
		}
		c.From = line
		found = append(found, c)
	}
	switch {
	case name == "" && all == 1 && len(found) == 1:
		return found[0], nil
	case name == "":
		return nil, fmt.Errorf("the checksum file holds %d checksums and the source has no name to choose by", all)
	case len(found) == 0:
		return nil, fmt.Errorf("the checksum file has no line for %q (%d other checksums)", name, all)
	}
	// the strongest algorithm when several lines name the file
	best := found[0]
	for _, c := range found[1:] {
		if hexLen[c.Algo] > hexLen[best.Algo] {
			best = c
		}
	}
	return best, nil
}

// checksumLine parses one line of either form.
func checksumLine(line string) (algo, h, file string, ok bool) {
	if line == "" || line[0] == '#' || strings.HasPrefix(line, "-----") || strings.HasPrefix(line, "Hash:") {
		return "", "", "", false
	}
	// BSD tagged: ALGO (NAME) = HEX
	if i := strings.Index(line, " ("); i > 0 {
		if j := strings.LastIndex(line, ") = "); j > i {
			algo = strings.ToLower(line[:i])
			if hexLen[algo] != 0 {
				return algo, line[j+4:], line[i+2 : j], true
			}
		}
	}
	// GNU: HEX  NAME or HEX *NAME
	f := strings.SplitN(line, " ", 2)
	if len(f) != 2 {
		return "", "", "", false
	}
	for a, n := range hexLen {
		if len(f[0]) == n {
			if _, err := hex.DecodeString(f[0]); err == nil {
				file = strings.TrimPrefix(strings.TrimLeft(f[1], " "), "*")
				return a, f[0], file, true
			}
		}
	}
	return "", "", "", false
}
