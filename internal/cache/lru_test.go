package cache

import "testing"

// TestLRU: the cache never holds more than max entries, evicts the least
// recently used, and Update, Find, Delete, DeleteIf and Purge do what
// they say.
func TestLRU(t *testing.T) {
	c := NewLRU[int, string](3)
	for i := range 3 {
		c.Put(i, "v")
	}
	c.Get(0)      // 0 is now the most recent; 1 the least
	c.Put(3, "v") // evicts 1
	if _, ok := c.Get(1); ok {
		t.Error("1 was not evicted")
	}
	for _, k := range []int{0, 2, 3} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%d evicted", k)
		}
	}
	c.Update(2, func(old string, ok bool) string {
		if !ok || old != "v" {
			t.Errorf("Update saw %q, %v", old, ok)
		}
		return "w"
	})
	if k, v, ok := c.Find(func(_ int, v string) bool { return v == "w" }); !ok || k != 2 || v != "w" {
		t.Errorf("Find = %d %q %v", k, v, ok)
	}
	c.Delete(2)
	c.DeleteIf(func(k int) bool { return k == 3 })
	if _, ok := c.Get(2); ok {
		t.Error("Delete left 2")
	}
	if _, ok := c.Get(3); ok {
		t.Error("DeleteIf left 3")
	}
	c.Purge()
	if _, ok := c.Get(0); ok {
		t.Error("Purge left 0")
	}
	for i := range 100 {
		c.Put(i, "x")
	}
	if n := len(c.items); n != 3 || c.order.Len() != 3 {
		t.Errorf("holds %d entries (list %d), bound 3", n, c.order.Len())
	}
}

// TestNewLRUCostsNothingUntilUsed: an empty cache allocates a few hundred
// bytes whatever its bound (before, NewLRU sized its map for max
// entries: about 1.2 MB for the ext engine's 16384 block owners, at every
// open, which alone made a short CLI run collect garbage once).
func TestNewLRUCostsNothingUntilUsed(t *testing.T) {
	var sink *LRU[uint64, [3]uint64]
	allocs := testing.AllocsPerRun(10, func() { sink = NewLRU[uint64, [3]uint64](1 << 14) })
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sink = NewLRU[uint64, [3]uint64](1 << 14)
		}
	})
	if per := res.AllocedBytesPerOp(); per > 1024 || allocs > 8 {
		t.Fatalf("NewLRU(16384) allocates %d bytes in %.0f allocations; want at most 1 KiB", per, allocs)
	}
	for i := range 100 {
		sink.Put(uint64(i), [3]uint64{uint64(i)})
	}
	for i := range 100 {
		if v, ok := sink.Get(uint64(i)); !ok || v[0] != uint64(i) {
			t.Fatalf("Get(%d) = %v, %v after 100 puts", i, v, ok)
		}
	}
}
