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
