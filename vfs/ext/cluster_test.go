package ext

import (
	"reflect"
	"testing"
)

// TestClusterRunArithmetic: the run helpers the bigalloc release uses
// merge overlapping and touching runs and subtract kept runs, splitting
// where a kept run lies inside a dropped one.
func TestClusterRunArithmetic(t *testing.T) {
	got := mergeRuns([]blockRun{{32, 16}, {0, 16}, {16, 8}, {40, 16}, {100, 4}})
	want := []blockRun{{0, 24}, {32, 24}, {100, 4}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mergeRuns = %v, want %v", got, want)
	}
	got = subtractRuns([]blockRun{{0, 64}, {128, 16}, {200, 8}}, []blockRun{{0, 16}, {32, 8}, {56, 80}, {300, 4}})
	want = []blockRun{{16, 16}, {40, 16}, {136, 8}, {200, 8}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("subtractRuns = %v, want %v", got, want)
	}
	if got := subtractRuns([]blockRun{{16, 16}}, nil); !reflect.DeepEqual(got, []blockRun{{16, 16}}) {
		t.Fatalf("subtracting nothing = %v", got)
	}
}
