package partition

import (
	"encoding/binary"
	"testing"
)

func TestLayoutSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"mbrEntry", mbrEntry{}, 16},
		{"mbrSector", mbrSector{}, mbrSectorSize},
		{"gptHeader", gptHeader{}, gptHeaderSize},
		{"gptEntry", gptEntry{}, gptEntryMinSize},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s is %d bytes, want %d", c.name, got, c.want)
		}
	}
}

func TestGUIDString(t *testing.T) {
	const s = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	g := guidBytes(t, s)
	if g[0] != 0x28 || g[3] != 0xC1 || g[8] != 0xBA {
		t.Errorf("mixed-endian bytes wrong: % x", g)
	}
	if got := guidString(g); got != s {
		t.Errorf("guidString = %s", got)
	}
}
