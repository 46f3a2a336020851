package vmdk

import (
	"encoding/binary"
	"testing"
)

func TestLayoutSizes(t *testing.T) {
	if n := binary.Size(SparseHeader{}); n != HeaderSize {
		t.Fatalf("SparseHeader is %d bytes, want %d", n, HeaderSize)
	}
	if n := binary.Size(GrainMarker{}); n != GrainMarkerSize {
		t.Fatalf("GrainMarker is %d bytes, want %d", n, GrainMarkerSize)
	}
	if n := binary.Size(Marker{}); n != 16 {
		t.Fatalf("Marker is %d bytes, want 16", n)
	}
}
