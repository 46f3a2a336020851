package qcow2

import (
	"encoding/binary"
	"testing"
)

// The on-disk structures must have exactly their specified sizes.
func TestLayoutSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"Header", Header{}, headerFull},
		{"ExtHeader", ExtHeader{}, 8},
		{"FeatureNameEntry", FeatureNameEntry{}, 48},
		{"SnapshotHeader", SnapshotHeader{}, 40},
		{"BitmapsExt", BitmapsExt{}, 24},
		{"BitmapDirEntry", BitmapDirEntry{}, 24},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}

func TestCompressedRange(t *testing.T) {
	// cluster_bits 16: x = 62 - 8 = 54; offset in bits 0..53, sectors above.
	e := L2Entry(FlagCompressed | 3<<54 | 0x12345)
	off, sectors := e.CompressedRange(16)
	if off != 0x12345 || sectors != 4 {
		t.Fatalf("got %#x, %d", off, sectors)
	}
	// cluster_bits 9: x = 61, a single bit of sector count.
	e = L2Entry(FlagCompressed | 1<<61 | 0x200)
	if off, sectors = e.CompressedRange(9); off != 0x200 || sectors != 2 {
		t.Fatalf("cb 9: got %#x, %d", off, sectors)
	}
}

// Every refcount width round-trips without disturbing its neighbours.
func TestRefEntryWidths(t *testing.T) {
	for order := uint32(0); order <= 6; order++ {
		b := make([]byte, 64)
		bits := uint64(1) << order
		max := ^uint64(0)
		if bits < 64 {
			max = 1<<bits - 1
		}
		n := int64(len(b)*8) / int64(bits)
		for i := int64(0); i < n; i++ {
			setRefEntry(b, i, order, uint64(i)&max)
		}
		setRefEntry(b, 3, order, max)
		for i := int64(0); i < n; i++ {
			want := uint64(i) & max
			if i == 3 {
				want = max
			}
			if got := refEntry(b, i, order); got != want {
				t.Fatalf("order %d entry %d: %d, want %d", order, i, got, want)
			}
		}
	}
	// Sub-byte entries start at the least significant bit.
	b := []byte{0}
	setRefEntry(b, 0, 0, 1)
	if b[0] != 1 {
		t.Fatalf("refcount_bits=1 entry 0 is bit %08b", b[0])
	}
}
