package vhd

import (
	"encoding/binary"
	"testing"
)

func TestLayoutSizes(t *testing.T) {
	if n := binary.Size(Footer{}); n != FooterSize {
		t.Fatalf("Footer is %d bytes, want %d", n, FooterSize)
	}
	if n := binary.Size(DynamicHeader{}); n != DynamicHeaderSize {
		t.Fatalf("DynamicHeader is %d bytes, want %d", n, DynamicHeaderSize)
	}
}
