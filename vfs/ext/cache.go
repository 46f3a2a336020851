package ext

import (
	"container/list"
	"sync"
)

// lru is a small bounded cache, safe for concurrent use.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recent; values are *lruItem
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), items: make(map[K]*list.Element, max)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *lru[K, V]) putLocked(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruItem[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruItem[K, V]{k, v})
	if c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruItem[K, V]).key)
	}
}

// update stores fn(old value, whether there was one) under k.
func (c *lru[K, V]) update(k K, fn func(V, bool) V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old V
	e, ok := c.items[k]
	if ok {
		old = e.Value.(*lruItem[K, V]).val
	}
	c.putLocked(k, fn(old, ok))
}

// find returns an entry for which match is true.
func (c *lru[K, V]) find(match func(K, V) bool) (K, V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.items {
		if v := e.Value.(*lruItem[K, V]).val; match(k, v) {
			return k, v, true
		}
	}
	var k K
	var v V
	return k, v, false
}

// delIf drops every key for which drop is true.
func (c *lru[K, V]) delIf(drop func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.items {
		if drop(k) {
			c.order.Remove(e)
			delete(c.items, k)
		}
	}
}

// del drops k from the cache.
func (c *lru[K, V]) del(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
	}
}
