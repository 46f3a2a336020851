// Package cache holds the bounded LRU cache both filesystem engines keep
// their metadata in (blocks, inodes, descriptors): a fixed number of
// entries whatever the image claims, safe for concurrent use.
package cache

import (
	"container/list"
	"sync"
)

// LRU is a small bounded cache, safe for concurrent use: past max entries
// the least recently used one goes.
type LRU[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recent; values are *lruItem
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

// NewLRU returns an empty cache of at most max entries. Its memory grows
// with the entries put in it, not with max: a filesystem opened for a
// few lookups does not pay for the 16384 block owners it may remember.
func NewLRU[K comparable, V any](max int) *LRU[K, V] {
	return &LRU[K, V]{max: max, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value under k and marks it recently used.
func (c *LRU[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Put stores v under k, dropping the least recently used entry when full.
func (c *LRU[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *LRU[K, V]) putLocked(k K, v V) {
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

// Update stores fn(old value, whether there was one) under k.
func (c *LRU[K, V]) Update(k K, fn func(V, bool) V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old V
	e, ok := c.items[k]
	if ok {
		old = e.Value.(*lruItem[K, V]).val
	}
	c.putLocked(k, fn(old, ok))
}

// Find returns an entry for which match is true.
func (c *LRU[K, V]) Find(match func(K, V) bool) (K, V, bool) {
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

// DeleteIf drops every key for which drop is true.
func (c *LRU[K, V]) DeleteIf(drop func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.items {
		if drop(k) {
			c.order.Remove(e)
			delete(c.items, k)
		}
	}
}

// Delete drops k from the cache.
func (c *LRU[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
	}
}

// Purge drops every entry.
func (c *LRU[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.items)
}
