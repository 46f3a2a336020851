package dirhash

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/guestinject/guestinject/internal/testtool"
)

// This file checks Hash and Fold against e2fsprogs' debugfs, whose
// dx_hash command runs the library's own directory hash:
//
//	dx_hash [-h hash_alg] [-s hash_seed] [-c] [-e encoding] name
//
// Names are passed in a command file; debugfs splits a command line on
// blanks and strips double quotes, so generated names avoid those bytes.

// oracleQuery is one dx_hash question.
type oracleQuery struct {
	name     []byte
	v        Version
	seed     [4]uint32
	casefold bool
}

// seedUUID formats a seed as the UUID debugfs -s parses: the 16 bytes of
// s_hash_seed, each word little-endian.
func seedUUID(s [4]uint32) string {
	var b [16]byte
	for i, w := range s {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var dxHashLine = regexp.MustCompile(`^Hash of .* is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)$`)

// askDebugfs runs every query through one debugfs process and returns
// the hashes in order.
func askDebugfs(t *testing.T, qs []oracleQuery) [][2]uint32 {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	testtool.Run(t, "mkfs.ext4", "-q", "-F", img, "1M")
	var cmds bytes.Buffer
	for _, q := range qs {
		cf := ""
		if q.casefold {
			cf = "-c -e utf8 "
		}
		fmt.Fprintf(&cmds, "dx_hash %s-h %d -s %s ", cf, q.v, seedUUID(q.seed))
		cmds.Write(q.name)
		cmds.WriteByte('\n')
	}
	cmdFile := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cmdFile, cmds.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := testtool.Run(t, "debugfs", "-f", cmdFile, img)
	var got [][2]uint32
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		m := dxHashLine.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		a, _ := strconv.ParseUint(string(m[1]), 16, 32)
		b, _ := strconv.ParseUint(string(m[2]), 16, 32)
		got = append(got, [2]uint32{uint32(a), uint32(b)})
	}
	if len(got) != len(qs) {
		t.Fatalf("debugfs answered %d of %d dx_hash queries:\n%s", len(got), len(qs), lastLines(out, 20))
	}
	return got
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// randomName returns a name debugfs can take on its command line: bytes
// 0x21..0xff without '"' and '\\', length 1..255, biased to the lengths
// where the hashes change chunk (4, 16, 32 bytes) and to bytes >= 0x80
// where the signed and unsigned variants differ.
func randomName(r *rand.Rand) []byte {
	lengths := []int{1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200, 254, 255}
	n := lengths[r.IntN(len(lengths))]
	if r.IntN(3) == 0 {
		n = 1 + r.IntN(255)
	}
	b := make([]byte, n)
	high := r.IntN(2) == 0
	for i := range b {
		for {
			c := byte(0x21 + r.IntN(0x7f-0x21))
			if high && r.IntN(2) == 0 {
				c = byte(0x80 + r.IntN(0x80))
			}
			if c != '"' && c != '\\' {
				b[i] = c
				break
			}
		}
	}
	return b
}

var oracleSeeds = [][4]uint32{
	{},
	{0x04030201, 0x08070605, 0x0c0b0a09, 0x100f0e0d},
	{0xdeadbeef, 0, 0, 0},
	{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
}

func TestHashMatchesDebugfs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var qs []oracleQuery
	for i := range 400 {
		name := randomName(r)
		for v := Legacy; v <= TeaUnsigned; v++ {
			qs = append(qs, oracleQuery{name: name, v: v, seed: oracleSeeds[i%len(oracleSeeds)]})
		}
	}
	want := askDebugfs(t, qs)
	for i, q := range qs {
		major, minor, err := Hash(q.name, q.v, q.seed)
		if err != nil {
			t.Fatalf("Hash(%q, %v): %v", q.name, q.v, err)
		}
		if major != want[i][0] || minor != want[i][1] {
			t.Errorf("Hash(%q, %v, %08x) = %#x/%#x, debugfs says %#x/%#x",
				q.name, q.v, q.seed, major, minor, want[i][0], want[i][1])
		}
	}
}

// casefoldNames exercise the folding: ASCII case, precomposed and
// decomposed accents, full foldings that change length (ß, ﬁ, ŉ), Greek
// and Cyrillic, Turkish dotted/dotless i (folded without Turkic rules),
// Default_Ignorable code points, Hangul syllables, combining-mark
// reordering, characters outside the BMP.
var casefoldNames = []string{
	"hello", "HELLO", "Hello", "MiXeD-Case_123.txt",
	"é", "e\u0301", "É", "E\u0301", "straße", "STRASSE", "strasse", "ẞ",
	"ﬁle", "FILE", "ŉ", "ΣΊΣΥΦΟΣ", "σίσυφος", "ς", "Привет", "ПРИВЕТ",
	"İstanbul", "ıi", "I\u0307",
	"a\u00adb", "a\u200db", "a\ufeffb", "a\ufe0fb", "a\u034fb", "a\U000e0041b", "\u3164x", "\u17b4",
	"한국어", "\u1112\u1161\u11ab", "a\u0323\u0307", "a\u0307\u0323", "ǅ", "ǆ", "Ǆ",
	"\U00010400", "\U00010428", "\U0001e900", "Ω", "ω", "Ω", "K", "Å",
	"\u2126\u212a\u212b", "ᾈ", "ᾀ", "ﬃ", "ǰ", "ΐ", "\u0345", "Ⅻ", "ⓐⒶ",
	"a\u0301\u034f\u0323", "a\u0323\u034f\u0301",
	"a" + strings.Repeat("\u0301\u0323", 20), "A" + strings.Repeat("\u0323", 40) + "\u0301",
}

func TestFoldMatchesDebugfs(t *testing.T) {
	var qs []oracleQuery
	for _, n := range casefoldNames {
		for _, v := range []Version{Legacy, HalfMD4, TeaUnsigned} {
			qs = append(qs, oracleQuery{name: []byte(n), v: v, seed: oracleSeeds[1], casefold: true})
		}
	}
	want := askDebugfs(t, qs)
	for i, q := range qs {
		f, err := Fold(q.name)
		if err != nil {
			t.Fatalf("Fold(%q): %v", q.name, err)
		}
		major, minor, _ := Hash(f, q.v, q.seed)
		if major != want[i][0] || minor != want[i][1] {
			t.Errorf("Hash(Fold(%q)=%q, %v) = %#x/%#x, debugfs -c says %#x/%#x",
				q.name, f, q.v, major, minor, want[i][0], want[i][1])
		}
	}
}

// TestFoldEveryCodePointMatchesDebugfs folds every code point of planes
// 0-3 and 14 (surrogates and blanks excepted), after an ASCII letter, and
// compares the half_md4 hash of the result with debugfs dx_hash -c -e
// utf8, which runs the kernel's Unicode 12.1 nfdicf tables.
func TestFoldEveryCodePointMatchesDebugfs(t *testing.T) {
	var qs []oracleQuery
	add := func(lo, hi rune) {
		for r := lo; r <= hi; r++ {
			if r >= 0xd800 && r < 0xe000 || r == '"' || r == '\\' || r == '/' || unicode.IsSpace(r) {
				continue
			}
			qs = append(qs, oracleQuery{name: []byte("a" + string(r)), v: HalfMD4, casefold: true})
		}
	}
	add(0x21, 0x3ffff)
	add(0xe0000, 0xe0fff)
	want := askDebugfs(t, qs)
	bad := 0
	for i, q := range qs {
		f, err := Fold(q.name)
		if err != nil {
			t.Fatalf("Fold(%q): %v", q.name, err)
		}
		major, minor, _ := Hash(f, q.v, q.seed)
		if major != want[i][0] || minor != want[i][1] {
			if bad++; bad <= 20 {
				t.Errorf("Fold(%+q) = %+q: hash %#x/%#x, debugfs -c says %#x/%#x", q.name, f, major, minor, want[i][0], want[i][1])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d code points fold differently from debugfs", bad, len(qs))
	}
}
