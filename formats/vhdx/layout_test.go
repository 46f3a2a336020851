package vhdx

import (
	"encoding/binary"
	"testing"
)

func TestLayoutSizes(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{{Header{}, 0x50}, {RegionTableHeader{}, 16}, {RegionEntry{}, 32}, {MetadataTableHeader{}, 32}, {MetadataEntry{}, 32}, {FileParameters{}, 8}} {
		if n := binary.Size(c.v); n != c.want {
			t.Errorf("%T is %d bytes, want %d", c.v, n, c.want)
		}
	}
	// the BAT region GUID as it sits on disk (the specification's bytes)
	if g := RegionBAT; g[0] != 0x66 || g[3] != 0x2d || g[4] != 0x23 || g[6] != 0x00 || g[8] != 0x9d {
		t.Errorf("RegionBAT on-disk bytes % x", g[:])
	}
}
