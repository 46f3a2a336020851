package dirhash

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/guestinject/guestinject/errs"
)

// ErrInvalidUTF8 is wrapped by the error Fold returns for a name that is
// not valid UTF-8.
var ErrInvalidUTF8 = errs.New(errs.ErrInvalid, "name is not valid UTF-8")

// Fold returns the form of name that a casefold directory (EXT4_CASEFOLD_FL,
// utf8 encoding) hashes and compares, as the kernel's utf8 "nfdicf" tables
// produce it: each character canonically decomposed (NFD), fully case
// folded (CaseFolding.txt statuses C and F, no Turkic rules), decomposed
// again; combining marks put in canonical order over the whole name; then
// every Default_Ignorable_Code_Point (soft hyphen, zero-width joiners,
// variation selectors, the byte-order mark, U+034F, ...) removed.
//
// A name that is not valid UTF-8 returns an error wrapping ErrInvalidUTF8.
// What to do then is the caller's policy, matching the kernel: a
// filesystem with the strict encoding flag cannot hold such a name (treat
// it as a lookup miss); otherwise the kernel hashes and compares the raw
// bytes, so the caller should fall back to Hash(name) and an exact byte
// comparison.
//
// The kernel's tables are Unicode 12.1; golang.org/x/text's are newer.
// Fold keeps to 12.1: the few characters whose folding or decomposition
// came later pass through unchanged, as in the kernel. Every code point
// of planes 0-3 and 14, alone after a letter, folds as debugfs dx_hash -c
// -e utf8 (e2fsprogs 1.47, the kernel's tables) folds it; see the tests.
//
// Because ignorable characters are removed after reordering (U+034F
// blocks the reordering of the marks around it, then disappears), folding
// is not idempotent: Fold(Fold(x)) may differ from Fold(x), in the kernel
// too.
func Fold(name []byte) ([]byte, error) {
	if !utf8.Valid(name) {
		return nil, fmt.Errorf("dirhash: casefold %q: %w", name, ErrInvalidUTF8)
	}
	rs := make([]rune, 0, len(name))
	for _, r := range string(name) {
		rs = appendFolded(rs, r)
	}
	reorderMarks(rs)
	out := make([]byte, 0, len(name))
	for _, r := range rs {
		if !isIgnorable(r) {
			out = utf8.AppendRune(out, r)
		}
	}
	return out, nil
}

// appendFolded appends the nfdicf mapping of r: its canonical
// decomposition, case folded (foldtable.go, generated from x/text's full
// folding), decomposed again. The mapping works one
// character at a time, like the kernel's tables, and leaves the ordering
// of combining marks to reorderMarks (x/text's normalizer, given a whole
// name, would break runs of more than 30 marks with U+034F; the kernel
// does not).
func appendFolded(rs []rune, r rune) []rune {
	if r < utf8.RuneSelf { // ASCII: no decomposition, simple folding
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(rs, r)
	}
	if inRanges(newer[:], r) {
		return append(rs, r)
	}
	for _, d := range norm.NFD.String(string(r)) {
		f, ok := foldRune(d)
		if !ok {
			rs = append(rs, d)
			continue
		}
		for _, c := range f {
			rs = append(rs, []rune(norm.NFD.String(string(c)))...)
		}
	}
	return rs
}

// foldRune returns what full case folding makes of r (foldtable.go),
// and false when it leaves r as it is.
func foldRune(r rune) (string, bool) {
	i, ok := slices.BinarySearch(foldKeys[:], r)
	if !ok {
		return "", false
	}
	return foldTo[i], true
}

// reorderMarks puts every run of combining marks (canonical combining
// class other than 0) in canonical order: a stable sort by class.
// Ignorable characters are still present here, and U+034F COMBINING
// GRAPHEME JOINER has class 0: it blocks the reordering of the marks
// around it, as in the kernel (debugfs agrees).
func reorderMarks(rs []rune) {
	for i := 0; i < len(rs); {
		if combiningClass(rs[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(rs) && combiningClass(rs[j]) != 0 {
			j++
		}
		slices.SortStableFunc(rs[i:j], func(a, b rune) int {
			return int(combiningClass(a)) - int(combiningClass(b))
		})
		i = j
	}
}

func combiningClass(r rune) uint8 {
	return norm.NFD.PropertiesString(string(r)).CCC()
}

// newer lists the characters whose folding or decomposition was added
// after Unicode 12.1 (the kernel's tables) and that x/text would change:
// the kernel passes them through unchanged, and so does Fold. The list
// is what a sweep of every code point against debugfs dx_hash -c found
// (TestFoldEveryCodePointMatchesDebugfs).
var newer = [...][2]rune{
	{0x2c2f, 0x2c2f},
	{0xa7c0, 0xa7c0},
	{0xa7c7, 0xa7c7},
	{0xa7c9, 0xa7c9},
	{0xa7d0, 0xa7d0},
	{0xa7d6, 0xa7d6},
	{0xa7d8, 0xa7d8},
	{0xa7f5, 0xa7f5},
	{0x10570, 0x10595},
	{0x11938, 0x11938},
}

// ignorable lists Unicode 12.1's Default_Ignorable_Code_Point ranges
// (DerivedCoreProperties.txt), inclusive, sorted.
var ignorable = [...][2]rune{
	{0x00ad, 0x00ad},
	{0x034f, 0x034f},
	{0x061c, 0x061c},
	{0x115f, 0x1160},
	{0x17b4, 0x17b5},
	{0x180b, 0x180e},
	{0x200b, 0x200f},
	{0x202a, 0x202e},
	{0x2060, 0x206f},
	{0x3164, 0x3164},
	{0xfe00, 0xfe0f},
	{0xfeff, 0xfeff},
	{0xffa0, 0xffa0},
	{0xfff0, 0xfff8},
	{0x1bca0, 0x1bca3},
	{0x1d173, 0x1d17a},
	{0xe0000, 0xe0fff},
}

func isIgnorable(r rune) bool { return inRanges(ignorable[:], r) }

// inRanges reports whether r lies in one of the sorted inclusive ranges.
func inRanges(ranges [][2]rune, r rune) bool {
	for _, rg := range ranges {
		if r < rg[0] {
			return false
		}
		if r <= rg[1] {
			return true
		}
	}
	return false
}
