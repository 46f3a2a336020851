package dirhash

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

var (
	zeroSeed = [4]uint32{}
	// testSeed is s_hash_seed 01020304-0506-0708-090a-0b0c0d0e0f10.
	testSeed = [4]uint32{0x04030201, 0x08070605, 0x0c0b0a09, 0x100f0e0d}
)

// hashVectors were produced by e2fsprogs 1.47.0:
//
//	debugfs -R "dx_hash -h VERSION -s SEED NAME" any.img
//
// with SEED 00000000-0000-0000-0000-000000000000 (zeroSeed, which selects
// the default seed) or 01020304-0506-0708-090a-0b0c0d0e0f10 (testSeed).
// Names cover the chunk boundaries (4, 16, 32 bytes), bytes >= 0x80 (where
// signed and unsigned variants differ) and invalid UTF-8.
var hashVectors = []struct {
	name         string
	v            Version
	seed         [4]uint32
	major, minor uint32
}{
	{"hello", 0, zeroSeed, 0x32252546, 0x0},
	{"hello", 0, testSeed, 0x32252546, 0x0},
	{"hello", 1, zeroSeed, 0x1746da32, 0x420013b5},
	{"hello", 1, testSeed, 0xe2ddf968, 0xc8bc0924},
	{"hello", 2, zeroSeed, 0x6f5bb1a8, 0x231917c2},
	{"hello", 2, testSeed, 0x1a5692b6, 0x2fd9857d},
	{"hello", 3, zeroSeed, 0x32252546, 0x0},
	{"hello", 3, testSeed, 0x32252546, 0x0},
	{"hello", 4, zeroSeed, 0x1746da32, 0x420013b5},
	{"hello", 4, testSeed, 0xe2ddf968, 0xc8bc0924},
	{"hello", 5, zeroSeed, 0x6f5bb1a8, 0x231917c2},
	{"hello", 5, testSeed, 0x1a5692b6, 0x2fd9857d},
	{"a", 0, zeroSeed, 0xe74b53e2, 0x0},
	{"a", 0, testSeed, 0xe74b53e2, 0x0},
	{"a", 1, zeroSeed, 0xd5fa7d7a, 0xacb48187},
	{"a", 1, testSeed, 0x8d08ec4c, 0x2fbccd78},
	{"a", 2, zeroSeed, 0x6d0ea4c0, 0xc18922df},
	{"a", 2, testSeed, 0xf53528f0, 0xea54fb01},
	{"a", 3, zeroSeed, 0xe74b53e2, 0x0},
	{"a", 3, testSeed, 0xe74b53e2, 0x0},
	{"a", 4, zeroSeed, 0xd5fa7d7a, 0xacb48187},
	{"a", 4, testSeed, 0x8d08ec4c, 0x2fbccd78},
	{"a", 5, zeroSeed, 0x6d0ea4c0, 0xc18922df},
	{"a", 5, testSeed, 0xf53528f0, 0xea54fb01},
	{"abcd", 0, zeroSeed, 0xfafa23ca, 0x0},
	{"abcd", 0, testSeed, 0xfafa23ca, 0x0},
	{"abcd", 1, zeroSeed, 0xad7557a8, 0xb1da437c},
	{"abcd", 1, testSeed, 0x33060ba6, 0x931ba061},
	{"abcd", 2, zeroSeed, 0x5a24112e, 0x95442076},
	{"abcd", 2, testSeed, 0xd565bfc8, 0xfd8156b1},
	{"abcd", 3, zeroSeed, 0xfafa23ca, 0x0},
	{"abcd", 3, testSeed, 0xfafa23ca, 0x0},
	{"abcd", 4, zeroSeed, 0xad7557a8, 0xb1da437c},
	{"abcd", 4, testSeed, 0x33060ba6, 0x931ba061},
	{"abcd", 5, zeroSeed, 0x5a24112e, 0x95442076},
	{"abcd", 5, testSeed, 0xd565bfc8, 0xfd8156b1},
	{"abcde", 0, zeroSeed, 0x2297902c, 0x0},
	{"abcde", 0, testSeed, 0x2297902c, 0x0},
	{"abcde", 1, zeroSeed, 0x5821840e, 0x1ce8a82c},
	{"abcde", 1, testSeed, 0xa59f8626, 0x2ce05516},
	{"abcde", 2, zeroSeed, 0x6937ed68, 0xb66bd0f1},
	{"abcde", 2, testSeed, 0xb6a1ea2, 0x4e8cbfc8},
	{"abcde", 3, zeroSeed, 0x2297902c, 0x0},
	{"abcde", 3, testSeed, 0x2297902c, 0x0},
	{"abcde", 4, zeroSeed, 0x5821840e, 0x1ce8a82c},
	{"abcde", 4, testSeed, 0xa59f8626, 0x2ce05516},
	{"abcde", 5, zeroSeed, 0x6937ed68, 0xb66bd0f1},
	{"abcde", 5, testSeed, 0xb6a1ea2, 0x4e8cbfc8},
	{"0123456789abcdef", 0, zeroSeed, 0x415c16fe, 0x0},
	{"0123456789abcdef", 0, testSeed, 0x415c16fe, 0x0},
	{"0123456789abcdef", 1, zeroSeed, 0x8cb502b6, 0x5acf4f33},
	{"0123456789abcdef", 1, testSeed, 0xf7de8978, 0xc3831b0},
	{"0123456789abcdef", 2, zeroSeed, 0x5a0788b2, 0xefa4e711},
	{"0123456789abcdef", 2, testSeed, 0xf592f110, 0x677e35fc},
	{"0123456789abcdef", 3, zeroSeed, 0x415c16fe, 0x0},
	{"0123456789abcdef", 3, testSeed, 0x415c16fe, 0x0},
	{"0123456789abcdef", 4, zeroSeed, 0x8cb502b6, 0x5acf4f33},
	{"0123456789abcdef", 4, testSeed, 0xf7de8978, 0xc3831b0},
	{"0123456789abcdef", 5, zeroSeed, 0x5a0788b2, 0xefa4e711},
	{"0123456789abcdef", 5, testSeed, 0xf592f110, 0x677e35fc},
	{"0123456789abcdefg", 0, zeroSeed, 0xfa356a68, 0x0},
	{"0123456789abcdefg", 0, testSeed, 0xfa356a68, 0x0},
	{"0123456789abcdefg", 1, zeroSeed, 0x3808cb0e, 0x9fb9d3a1},
	{"0123456789abcdefg", 1, testSeed, 0x3f13d6fc, 0x4abe7e65},
	{"0123456789abcdefg", 2, zeroSeed, 0xfb1a23ec, 0xb1ba9f3a},
	{"0123456789abcdefg", 2, testSeed, 0xffacd882, 0x540bc03a},
	{"0123456789abcdefg", 3, zeroSeed, 0xfa356a68, 0x0},
	{"0123456789abcdefg", 3, testSeed, 0xfa356a68, 0x0},
	{"0123456789abcdefg", 4, zeroSeed, 0x3808cb0e, 0x9fb9d3a1},
	{"0123456789abcdefg", 4, testSeed, 0x3f13d6fc, 0x4abe7e65},
	{"0123456789abcdefg", 5, zeroSeed, 0xfb1a23ec, 0xb1ba9f3a},
	{"0123456789abcdefg", 5, testSeed, 0xffacd882, 0x540bc03a},
	{"0123456789abcdef0123456789abcdef", 0, zeroSeed, 0x6d4a15ee, 0x0},
	{"0123456789abcdef0123456789abcdef", 0, testSeed, 0x6d4a15ee, 0x0},
	{"0123456789abcdef0123456789abcdef", 1, zeroSeed, 0x36184620, 0xc959df59},
	{"0123456789abcdef0123456789abcdef", 1, testSeed, 0xd7680c2c, 0xe50252d7},
	{"0123456789abcdef0123456789abcdef", 2, zeroSeed, 0xcbe95e3c, 0x17627589},
	{"0123456789abcdef0123456789abcdef", 2, testSeed, 0xbd1f63f0, 0x57bb8b20},
	{"0123456789abcdef0123456789abcdef", 3, zeroSeed, 0x6d4a15ee, 0x0},
	{"0123456789abcdef0123456789abcdef", 3, testSeed, 0x6d4a15ee, 0x0},
	{"0123456789abcdef0123456789abcdef", 4, zeroSeed, 0x36184620, 0xc959df59},
	{"0123456789abcdef0123456789abcdef", 4, testSeed, 0xd7680c2c, 0xe50252d7},
	{"0123456789abcdef0123456789abcdef", 5, zeroSeed, 0xcbe95e3c, 0x17627589},
	{"0123456789abcdef0123456789abcdef", 5, testSeed, 0xbd1f63f0, 0x57bb8b20},
	{"0123456789abcdef0123456789abcdef!", 0, zeroSeed, 0xb6ad8fb6, 0x0},
	{"0123456789abcdef0123456789abcdef!", 0, testSeed, 0xb6ad8fb6, 0x0},
	{"0123456789abcdef0123456789abcdef!", 1, zeroSeed, 0xd2138bca, 0xacf6fd75},
	{"0123456789abcdef0123456789abcdef!", 1, testSeed, 0xe09660fe, 0x892fd305},
	{"0123456789abcdef0123456789abcdef!", 2, zeroSeed, 0xa74da962, 0x4a514ec6},
	{"0123456789abcdef0123456789abcdef!", 2, testSeed, 0x9b777214, 0x61823e81},
	{"0123456789abcdef0123456789abcdef!", 3, zeroSeed, 0xb6ad8fb6, 0x0},
	{"0123456789abcdef0123456789abcdef!", 3, testSeed, 0xb6ad8fb6, 0x0},
	{"0123456789abcdef0123456789abcdef!", 4, zeroSeed, 0xd2138bca, 0xacf6fd75},
	{"0123456789abcdef0123456789abcdef!", 4, testSeed, 0xe09660fe, 0x892fd305},
	{"0123456789abcdef0123456789abcdef!", 5, zeroSeed, 0xa74da962, 0x4a514ec6},
	{"0123456789abcdef0123456789abcdef!", 5, testSeed, 0x9b777214, 0x61823e81},
	{"\xc3\xa9t\xc3\xa9", 0, zeroSeed, 0x70d7b7fc, 0x0},
	{"\xc3\xa9t\xc3\xa9", 0, testSeed, 0x70d7b7fc, 0x0},
	{"\xc3\xa9t\xc3\xa9", 1, zeroSeed, 0xa69a4d3a, 0x22bac128},
	{"\xc3\xa9t\xc3\xa9", 1, testSeed, 0x46242884, 0x6e9fe329},
	{"\xc3\xa9t\xc3\xa9", 2, zeroSeed, 0x4d337a6, 0x615a017},
	{"\xc3\xa9t\xc3\xa9", 2, testSeed, 0x1f284fc0, 0xfb819dc9},
	{"\xc3\xa9t\xc3\xa9", 3, zeroSeed, 0x40d0f40c, 0x0},
	{"\xc3\xa9t\xc3\xa9", 3, testSeed, 0x40d0f40c, 0x0},
	{"\xc3\xa9t\xc3\xa9", 4, zeroSeed, 0x3eb35f16, 0x634a9ed3},
	{"\xc3\xa9t\xc3\xa9", 4, testSeed, 0x1cded296, 0xd976ff1f},
	{"\xc3\xa9t\xc3\xa9", 5, zeroSeed, 0x2ed2feac, 0x3a9221a3},
	{"\xc3\xa9t\xc3\xa9", 5, testSeed, 0x44dd7c16, 0xa8d605e2},
	{"\xff\xfe\x80\x7f", 0, zeroSeed, 0xd3103d28, 0x0},
	{"\xff\xfe\x80\x7f", 0, testSeed, 0xd3103d28, 0x0},
	{"\xff\xfe\x80\x7f", 1, zeroSeed, 0x9ed4d582, 0x2e0495d0},
	{"\xff\xfe\x80\x7f", 1, testSeed, 0xc62e40f2, 0x85b8e5cc},
	{"\xff\xfe\x80\x7f", 2, zeroSeed, 0x2ce61f64, 0x7e7c7bb5},
	{"\xff\xfe\x80\x7f", 2, testSeed, 0xe9471efe, 0x25aa5e8},
	{"\xff\xfe\x80\x7f", 3, zeroSeed, 0x25a88fe6, 0x0},
	{"\xff\xfe\x80\x7f", 3, testSeed, 0x25a88fe6, 0x0},
	{"\xff\xfe\x80\x7f", 4, zeroSeed, 0x408a108e, 0x1035c80b},
	{"\xff\xfe\x80\x7f", 4, testSeed, 0xa0410b6, 0xf79990eb},
	{"\xff\xfe\x80\x7f", 5, zeroSeed, 0xcb4d0e00, 0x568debe1},
	{"\xff\xfe\x80\x7f", 5, testSeed, 0x3ad33836, 0x702f5a},
	{"caf\xe9", 0, zeroSeed, 0x65f23bce, 0x0},
	{"caf\xe9", 0, testSeed, 0x65f23bce, 0x0},
	{"caf\xe9", 1, zeroSeed, 0x9be4a372, 0xc33d4f19},
	{"caf\xe9", 1, testSeed, 0x68a2d4fe, 0xcd88a4e8},
	{"caf\xe9", 2, zeroSeed, 0x84b3a194, 0x1cf71779},
	{"caf\xe9", 2, testSeed, 0x785bcf42, 0xd7096f03},
	{"caf\xe9", 3, zeroSeed, 0x7c3849d0, 0x0},
	{"caf\xe9", 3, testSeed, 0x7c3849d0, 0x0},
	{"caf\xe9", 4, zeroSeed, 0xab408964, 0x7893b5c},
	{"caf\xe9", 4, testSeed, 0xa99d09b2, 0xa44adfbc},
	{"caf\xe9", 5, zeroSeed, 0xe665cc26, 0x417d943d},
	{"caf\xe9", 5, testSeed, 0xceacc322, 0x6f6faef3},
	{"lost+found", 0, zeroSeed, 0x5e2aba24, 0x0},
	{"lost+found", 0, testSeed, 0x5e2aba24, 0x0},
	{"lost+found", 1, zeroSeed, 0x591de422, 0x6ffc56e0},
	{"lost+found", 1, testSeed, 0x694c8bb4, 0x74b39433},
	{"lost+found", 2, zeroSeed, 0x2dbf9e80, 0xbfebee4f},
	{"lost+found", 2, testSeed, 0x3e95424c, 0xc33595ee},
	{"lost+found", 3, zeroSeed, 0x5e2aba24, 0x0},
	{"lost+found", 3, testSeed, 0x5e2aba24, 0x0},
	{"lost+found", 4, zeroSeed, 0x591de422, 0x6ffc56e0},
	{"lost+found", 4, testSeed, 0x694c8bb4, 0x74b39433},
	{"lost+found", 5, zeroSeed, 0x2dbf9e80, 0xbfebee4f},
	{"lost+found", 5, testSeed, 0x3e95424c, 0xc33595ee},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 0, zeroSeed, 0x6c24802a, 0x0},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 0, testSeed, 0x6c24802a, 0x0},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 1, zeroSeed, 0x667fa3e8, 0x72958df0},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 1, testSeed, 0x36b3172a, 0x358e9074},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 2, zeroSeed, 0x47fec2e2, 0x8831265d},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 2, testSeed, 0xde72d324, 0x5caa09c7},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 3, zeroSeed, 0xf1c0c5f2, 0x0},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 3, testSeed, 0xf1c0c5f2, 0x0},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 4, zeroSeed, 0x88c77dc6, 0x658cf8e5},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 4, testSeed, 0x4c32bbd8, 0x3c02b737},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 5, zeroSeed, 0x44c6dcfc, 0x13ff74b2},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xa7\xe3\x81\x99", 5, testSeed, 0xf110b596, 0x6e171fa3},
}

func TestHashVectors(t *testing.T) {
	for _, tc := range hashVectors {
		major, minor, err := Hash([]byte(tc.name), tc.v, tc.seed)
		if err != nil {
			t.Errorf("Hash(%q, %v): %v", tc.name, tc.v, err)
			continue
		}
		if major != tc.major || minor != tc.minor {
			t.Errorf("Hash(%q, %v, %08x) = %#x/%#x, want %#x/%#x", tc.name, tc.v, tc.seed, major, minor, tc.major, tc.minor)
		}
	}
}

func TestSignedAndUnsignedAgreeOnASCII(t *testing.T) {
	name := []byte("plain-ascii_name.txt")
	for base := Legacy; base <= Tea; base++ {
		m1, n1, _ := Hash(name, base, testSeed)
		m2, n2, _ := Hash(name, base+3, testSeed)
		if m1 != m2 || n1 != n2 {
			t.Errorf("%v and %v differ on ASCII: %#x/%#x vs %#x/%#x", base, base+3, m1, n1, m2, n2)
		}
		h1, _, _ := Hash([]byte("caf\xe9"), base, testSeed)
		h2, _, _ := Hash([]byte("caf\xe9"), base+3, testSeed)
		if h1 == h2 {
			t.Errorf("%v and %v agree on a byte >= 0x80 (%#x)", base, base+3, h1)
		}
	}
}

func TestEmptyNameHashesToSeed(t *testing.T) {
	major, minor, _ := Hash(nil, HalfMD4, testSeed)
	if major != testSeed[1]&^1 || minor != testSeed[2] {
		t.Errorf("half_md4 of empty name = %#x/%#x, want the seed words %#x/%#x", major, minor, testSeed[1]&^1, testSeed[2])
	}
	major, minor, _ = Hash(nil, Tea, zeroSeed)
	if major != defaultSeed[0]&^1 || minor != defaultSeed[1] {
		t.Errorf("tea of empty name = %#x/%#x, want the default seed words", major, minor)
	}
}

func TestUnsupportedVersions(t *testing.T) {
	for _, v := range []Version{SipHash, 7, 8, 255} {
		if _, _, err := Hash([]byte("x"), v, zeroSeed); !errors.Is(err, ErrUnsupportedHash) {
			t.Errorf("Hash(version %d) error = %v, want ErrUnsupportedHash", v, err)
		}
	}
}

func TestFinishMajor(t *testing.T) {
	for _, tc := range []struct{ in, want uint32 }{
		{0, 0},
		{1, 0},
		{0x12345679, 0x12345678},
		{0xfffffffc, 0xfffffffc},
		{0xfffffffd, 0xfffffffc},
		{0xfffffffe, 0xfffffffc}, // EXT4_HTREE_EOF_32BIT << 1
		{0xffffffff, 0xfffffffc},
	} {
		if got := finishMajor(tc.in); got != tc.want {
			t.Errorf("finishMajor(%#x) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestVersionString(t *testing.T) {
	if HalfMD4Unsigned.String() != "half_md4_unsigned" || Version(9).String() != "hash_version_9" {
		t.Errorf("String: %q %q", HalfMD4Unsigned, Version(9))
	}
}

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Hello", "hello"},
		{"É", "e\u0301"},
		{"é", "e\u0301"},
		{"STRASSE", "strasse"},
		{"Straße", "strasse"},
		{"a\u00adb\u200dc\ufeff", "abc"},
		{"Ꭰ", "Ꭰ"},           // Cherokee folds to its uppercase letters
		{"ꭰ", "Ꭰ"},           // U+AB70 -> U+13A0
		{"\u2c2f", "\u2c2f"}, // assigned in Unicode 14: not folded by 12.1 tables
		{"", ""},
	} {
		got, err := Fold([]byte(tc.in))
		if err != nil {
			t.Errorf("Fold(%q): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Fold(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}

func TestFoldInvalidUTF8(t *testing.T) {
	for _, in := range []string{"caf\xe9", "\xff", "\xed\xa0\x80", "\xc0\xaf", "ok\xe2\x82"} {
		if _, err := Fold([]byte(in)); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("Fold(%q) error = %v, want ErrInvalidUTF8", in, err)
		}
	}
}

func FuzzHashAndFold(f *testing.F) {
	for _, tc := range hashVectors {
		f.Add([]byte(tc.name), uint8(tc.v), tc.seed[0], tc.seed[1])
	}
	f.Add([]byte("a\u0323\u0307\u00ad\U00010570"), uint8(9), uint32(0), uint32(1))
	f.Fuzz(func(t *testing.T, name []byte, v uint8, s0, s1 uint32) {
		seed := [4]uint32{s0, s1, s0 ^ s1, 0}
		in := bytes.Clone(name)
		m1, n1, err1 := Hash(name, Version(v), seed)
		m2, n2, err2 := Hash(name, Version(v), seed)
		if m1 != m2 || n1 != n2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Hash not deterministic")
		}
		if err1 == nil && m1&1 != 0 {
			t.Fatalf("major %#x has its low bit set", m1)
		}
		if v > uint8(TeaUnsigned) && !errors.Is(err1, ErrUnsupportedHash) {
			t.Fatalf("version %d accepted", v)
		}
		f1, e1 := Fold(name)
		f2, e2 := Fold(name)
		if !bytes.Equal(f1, f2) || (e1 == nil) != (e2 == nil) {
			t.Fatalf("Fold not deterministic")
		}
		if e1 == nil && !utf8.Valid(f1) {
			t.Fatalf("Fold(%+q) = %+q, not valid UTF-8", name, f1)
		}
		if !bytes.Equal(in, name) {
			t.Fatalf("input modified")
		}
	})
}
