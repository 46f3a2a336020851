package layout

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestHandDecodersMatchEncodingBinary: the structures decoded by hand
// decode random bytes (and too-short buffers) exactly as encoding/binary
// does.
func TestHandDecodersMatchEncodingBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 64)
	type pair struct {
		name      string
		hand, ref func(b []byte) (any, error)
	}
	ref := func(v any, off int, what string) func(b []byte) (any, error) {
		return func(b []byte) (any, error) {
			x := reflect.New(reflect.TypeOf(v))
			err := decode(sub(b, off), x.Interface(), what)
			return x.Elem().Interface(), err
		}
	}
	pairs := []pair{
		{"Dirent", func(b []byte) (any, error) { return DecodeDirent(b) }, ref(Dirent{}, 0, "directory entry")},
		{"DirentTail", func(b []byte) (any, error) { return DecodeDirentTail(b) }, func(b []byte) (any, error) {
			x := new(DirentTail)
			err := decode(sub(b, len(b)-DirentTailSize), x, "directory tail")
			return *x, err
		}},
		{"ExtentHeader", func(b []byte) (any, error) { return DecodeExtentHeader(b) }, ref(ExtentHeader{}, 0, "extent header")},
		{"Extent", func(b []byte) (any, error) { return DecodeExtent(b, 2) }, ref(Extent{}, ExtentHeaderSize+2*ExtentEntrySize, "extent")},
		{"ExtentIndex", func(b []byte) (any, error) { return DecodeExtentIndex(b, 1) }, ref(ExtentIndex{}, ExtentHeaderSize+ExtentEntrySize, "extent index")},
	}
	for _, p := range pairs {
		for i := 0; i < 1000; i++ {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			n := len(b)
			if i%10 == 0 {
				n = rng.IntN(len(b))
			}
			h, herr := p.hand(b[:n])
			r, rerr := p.ref(b[:n])
			if (herr == nil) != (rerr == nil) || herr != nil && herr.Error() != rerr.Error() {
				t.Fatalf("%s, %d bytes: error %v, encoding/binary %v", p.name, n, herr, rerr)
			}
			if herr == nil && !reflect.DeepEqual(h, r) {
				t.Fatalf("%s: %+v, encoding/binary %+v", p.name, h, r)
			}
		}
	}
}
