package sqlite

import (
	"context"
	"sync"
)

// Idempotency keys are found by their hash (idemHash) in idempotency_index,
// a table written in sorted runs rather than an index SQLite keeps up row by
// row (migration 8). Keys are random, so that index took each new key on a
// page of its own once it was large, and a window's writes grew with it:
// BenchmarkMaterialize wrote 1,999 bytes and spent 20.4 µs a pair over
// 250,000 pairs, 4,096 bytes and 29.8 µs over 1,000,000; with the runs,
// 1,395 bytes and 17.9 µs, then 1,612 bytes and 18.9 µs.
//
// So the newest rows (seq above journal_state.indexed) are found through
// idemTail, in memory, and once it holds idemTailMax keys a window copies
// them all into idempotency_index in hash order, in the same transaction:
// sorted keys share pages, so a run writes at most one page per key, and
// far fewer while the index is small next to the run. (About 220 keys
// share a page: a run of 65,536 keys writes a page for every key only once
// the index holds some 14 million, as the old index did in every window
// past a few hundred thousand.)
//
// A lookup looks at the overlay, then the tail, then the table, and never
// misses a key, because each key is always in a place a later look sees:
// a window's keys join the tail after its commit and leave the overlay
// after that; they leave the tail only after the commit that indexed them.

// idemTailMax is how many keys the tail holds before a window indexes
// them (2 MiB in a heap profile): Store.tailMax, which tests lower. A
// window that indexes them took 151-187 ms against about 60 (the copy
// 96-128 ms of it) in credits bench many, every 2 s at 33,800 pairs/s.
const idemTailMax = 1 << 16

// idemTail maps the hash of each key stored above the index's mark to its
// rows' seqs. The materializer adds and clears; lookups read.
type idemTail struct {
	mu   sync.Mutex
	seqs map[int64]int64   // a hash's newest seq
	more map[int64][]int64 // a hash's older seqs, oldest first: a key stored again after its lifetime, or two keys of one hash
	n    int
}

type tailKey struct {
	hash, seq int64
}

func newIdemTail() *idemTail {
	return &idemTail{seqs: map[int64]int64{}, more: map[int64][]int64{}}
}

// add records rows, each newer than every row already in the tail.
func (t *idemTail) add(keys []tailKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if old, ok := t.seqs[k.hash]; ok {
			t.more[k.hash] = append(t.more[k.hash], old)
		}
		t.seqs[k.hash] = k.seq
		t.n++
	}
}

// clear forgets every key: they are all in idempotency_index now.
func (t *idemTail) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.seqs)
	clear(t.more)
	t.n = 0
}

func (t *idemTail) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// lookup appends the seqs of the rows stored under hash to dst, newest
// first.
func (t *idemTail) lookup(dst []int64, hash int64) []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq, ok := t.seqs[hash]
	if !ok {
		return dst
	}
	dst = append(dst, seq)
	older := t.more[hash]
	for i := len(older) - 1; i >= 0; i-- {
		dst = append(dst, older[i])
	}
	return dst
}

// loadIdemTail reads the rows above the index's mark into a new tail, and
// the newest seq (Open, before the journal's replay).
func (s *Store) loadIdemTail(ctx context.Context) error {
	s.tail = newIdemTail()
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM idempotency`).Scan(&s.idemSeq); err != nil {
		return err
	}
	// The sweep may have deleted the newest rows: a new row's seq must
	// still be above the mark, or no lookup would find it.
	s.idemSeq = max(s.idemSeq, s.indexed)
	rows, err := s.w.QueryContext(ctx, `SELECT hash, seq FROM idempotency WHERE seq > ? ORDER BY seq`, s.indexed)
	if err != nil {
		return err
	}
	defer rows.Close()
	var keys []tailKey
	for rows.Next() {
		var k tailKey
		if err := rows.Scan(&k.hash, &k.seq); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.tail.add(keys)
	return nil
}
