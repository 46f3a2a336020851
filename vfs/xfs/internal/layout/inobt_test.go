package layout

import (
	"testing"
	"time"
)

// TestInobtRecRoundTrip: both record formats encode and decode back, and
// the sparse hole mask expands to four inodes a bit.
func TestInobtRecRoundTrip(t *testing.T) {
	var b [InobtRecSize]byte
	full := InobtRec{StartIno: 96, Count: InodesPerChunk, FreeCount: 61, Free: ^uint64(7)}
	EncodeInobtRec(b[:], full, false)
	if got := DecodeInobtRec(b[:], false); got != full || !got.Consistent() {
		t.Fatalf("full record: %+v, want %+v", got, full)
	}
	sparse := InobtRec{StartIno: 128, HoleMask: 0xFF00, Count: 32, Free: 0xFFFFFFFF_FFFFFFF0, FreeCount: 28}
	EncodeInobtRec(b[:], sparse, true)
	got := DecodeInobtRec(b[:], true)
	if got != sparse || got.Holes() != 0xFFFFFFFF_00000000 || got.FreeInodes() != 0xFFFFFFF0 || !got.Consistent() {
		t.Fatalf("sparse record: %+v holes %#x", got, got.Holes())
	}
	got.FreeCount++
	if got.Consistent() {
		t.Fatal("a wrong free count passes as consistent")
	}
}

// TestMakeTimestamp: both timestamp encodings decode to the same time.
func TestMakeTimestamp(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(0, 0), time.Unix(1700000000, 123456789), time.Unix(-1000, 5)} {
		for _, big := range []bool{false, true} {
			if got := MakeTimestamp(tm, big).Time(big); !got.Equal(tm) {
				t.Fatalf("bigtime=%v: %v decodes as %v", big, tm, got)
			}
		}
	}
}
