package sqlite

import (
	"context"
	"sync"
)

// Idempotency keys are found by their hash (idemHash) in idempotency_index,
// a table written in sorted runs rather than an index SQLite keeps up row by
// row (migration 8). Keys are random, so an index took each new key on a
// page of its own once it was large: the WAL frames of a window of 1,150
// pairs grew from 889 to 2,081 over 250,000 pairs, and with the index gone
// credits bench went from 27,372 to 31,955 pairs/s on many workspaces.
//
// So the newest rows (seq above journal_state.indexed) are found through
// idemTail, in memory, and once it holds idemTailMax keys a window copies
// them all into idempotency_index in hash order, in its own transaction: a
// run of sorted keys shares pages, so a key costs a few bytes of WAL
// instead of a page.
//
// A lookup looks at the overlay, then the tail, then the table, and never
// misses a key, because each key is always in a place a later look sees:
// a window's keys join the tail after its commit and leave the overlay
// after that; they leave the tail only after the commit that indexed them.

// idemTailMax is how many keys the tail holds before a window indexes
// them (about 3 MiB of memory): Store.tailMax, which tests lower.
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
