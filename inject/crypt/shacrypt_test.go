package crypt

import (
	"math/rand/v2"
	"strings"
	"testing"

	gcrypt "github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/sha512_crypt"
)

// libxcryptBatch is crypt(3) of libxcrypt for many pairs in one perl
// run: "*0"-style failures come back as they are.
func libxcryptBatch(t *testing.T, pairs [][2]string) []string {
	t.Helper()
	var in strings.Builder
	for _, p := range pairs {
		in.WriteString(p[0] + "\x00" + p[1] + "\x00")
	}
	script := `local $/ = "\0"; my @a = <STDIN>; chomp @a; for (my $i = 0; $i < @a; $i += 2) { my $r = crypt($a[$i], $a[$i+1]); print((defined $r ? $r : "UNDEF"), "\n") }`
	out := runPerl(t, script, in.String())
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(pairs) {
		t.Fatalf("perl answered %d of %d", len(lines), len(pairs))
	}
	return lines
}

// TestSHACryptMatchesLibxcrypt: random passwords (around the digest
// sizes too), salts (empty to over-long, every character libxcrypt takes)
// and rounds give libxcrypt's hash, and the settings libxcrypt refuses
// are refused.
func TestSHACryptMatchesLibxcrypt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	saltChars := "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-=,#@~\"'%&(_`{|?^"
	lengths := []int{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300}
	var pairs [][2]string
	for i := 0; i < 120; i++ {
		n := lengths[i%len(lengths)]
		if i >= len(lengths) {
			n = rng.IntN(200)
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(1 + rng.IntN(255))
		}
		salt := make([]byte, rng.IntN(21))
		for j := range salt {
			salt[j] = saltChars[rng.IntN(len(saltChars))]
		}
		prefix := []string{"$6$", "$5$"}[i%2]
		switch i % 5 {
		case 1:
			prefix += "rounds=1000$"
		case 2:
			prefix += "rounds=5000$"
		case 3:
			prefix += "rounds=1234$"
		}
		pairs = append(pairs, [2]string{string(p), prefix + string(salt)})
	}
	for _, st := range []string{"$6$rounds=999$abc", "$6$rounds=0$abc", "$6$rounds=05000$abc", "$6$rounds=1000000000$abc",
		"$6$rounds=abc$abc", "$6$rounds=1000abc", "$6$rounds=1000", "$6$rounds=1000$", "$6$", "$6$a$b$c", "$6$ab:c", "$6$ab cd",
		"$6$a*b", "$6$a!b", "$6$a;b", "$6$a\\b", "$6$abc$*x", "$6$\xc3\xbc", "$5$rounds=1000$x", "$5$rounds=-1000$x", "$5$rounds=+1000$x"} {
		pairs = append(pairs, [2]string{"pw", st})
	}
	want := libxcryptBatch(t, pairs)
	for i, p := range pairs {
		got, err := HashSetting(p[0], p[1])
		refused := strings.HasPrefix(want[i], "*") || want[i] == "UNDEF"
		switch {
		case refused && err == nil:
			t.Errorf("crypt(%q, %q) = %q, libxcrypt refuses it (%s)", p[0], p[1], got, want[i])
		case !refused && (err != nil || got != want[i]):
			t.Errorf("crypt(%q, %q) = %q, %v; libxcrypt %q", p[0], p[1], got, err, want[i])
		}
	}
}

// BenchmarkSHA512Crypt compares this package's sha512-crypt with the
// library it replaced, at the default 5000 rounds.
func BenchmarkSHA512Crypt(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := HashSetting("s3cret pass", "$6$0r9EjbPXdIClXyiw"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GehirnInc", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := gcrypt.SHA512.New().Generate([]byte("s3cret pass"), []byte("$6$0r9EjbPXdIClXyiw")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
