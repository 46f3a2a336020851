package vdi

import (
	"encoding/binary"
	"testing"
)

func TestLayoutSizes(t *testing.T) {
	if n := binary.Size(Header{}); n != HeaderSize {
		t.Fatalf("Header is %#x bytes, want %#x", n, HeaderSize)
	}
	if HeaderOffset+HeaderSize != 0x1d8 {
		t.Fatalf("header ends at %#x, want 0x1d8", HeaderOffset+HeaderSize)
	}
}
