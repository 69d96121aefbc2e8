package sqlite

import (
	"context"
	"database/sql"
	"hash/maphash"
)

// idemFilter is a Bloom filter of the idempotency keys the store holds. Almost
// every hold brings a new key, and without the filter each would cost a
// lookup that finds nothing; with it, only the keys the filter may hold (the
// retries, and about 1% of the rest) are looked up. It never says a stored key
// is absent, so a retry is always found. Keys are added, never removed (a
// deleted key only costs a lookup); past its capacity the filter answers
// "maybe" more often, which costs lookups, never correctness, until the next
// Open sizes it anew.
type idemFilter struct {
	seed maphash.Seed
	bits []uint64
	m    uint64 // len(bits)*64
}

const (
	idemFilterMinKeys = 1 << 21 // 2M keys: 2.5 MiB
	idemFilterBitsKey = 10      // with 7 probes: about 1% false "maybe"
	idemFilterProbes  = 7
)

func newIdemFilter(keys int) *idemFilter {
	n := uint64(max(2*keys, idemFilterMinKeys)) * idemFilterBitsKey
	words := (n + 63) / 64
	return &idemFilter{seed: maphash.MakeSeed(), bits: make([]uint64, words), m: words * 64}
}

func (f *idemFilter) hashes(ws, key string) (uint64, uint64) {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteString(ws)
	h.WriteByte(0)
	h.WriteString(key)
	x := h.Sum64()
	return x, (x >> 32) | 1
}

func (f *idemFilter) add(ws, key string) {
	h1, h2 := f.hashes(ws, key)
	for i := range uint64(idemFilterProbes) {
		b := (h1 + i*h2) % f.m
		f.bits[b/64] |= 1 << (b % 64)
	}
}

func (f *idemFilter) mayContain(ws, key string) bool {
	h1, h2 := f.hashes(ws, key)
	for i := range uint64(idemFilterProbes) {
		b := (h1 + i*h2) % f.m
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// loadIdemFilter builds the filter from the table's keys.
func (s *Store) loadIdemFilter(ctx context.Context) (*idemFilter, error) {
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM idempotency`).Scan(&n); err != nil {
		return nil, err
	}
	f := newIdemFilter(n)
	rows, err := s.w.QueryContext(ctx, `SELECT workspace_id, key FROM idempotency`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ws, key string
		if err := rows.Scan(&ws, &key); err != nil {
			return nil, err
		}
		f.add(ws, key)
	}
	return f, rows.Err()
}

// idemHash is an idempotency row's hash column (migration 7): FNV-1a, 64
// bits, of the workspace id, a zero byte and the key. It is stored, so it
// must never change.
func idemHash(ws, key string) int64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(ws); i++ {
		h = (h ^ uint64(ws[i])) * prime
	}
	h *= prime // the zero byte
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return int64(h)
}

// fillIdemHashes sets the hash of the rows stored before migration 7, a
// few thousand rows at a time.
func fillIdemHashes(ctx context.Context, tx *sql.Tx) error {
	update, err := tx.PrepareContext(ctx, `UPDATE idempotency SET hash = ? WHERE seq = ?`)
	if err != nil {
		return err
	}
	defer update.Close()
	type row struct {
		seq  int64
		hash int64
	}
	var after int64
	for {
		rows, err := tx.QueryContext(ctx, `SELECT seq, workspace_id, key FROM idempotency WHERE seq > ? ORDER BY seq LIMIT 4096`, after)
		if err != nil {
			return err
		}
		var part []row
		for rows.Next() {
			var r row
			var ws, key string
			if err := rows.Scan(&r.seq, &ws, &key); err != nil {
				rows.Close()
				return err
			}
			r.hash = idemHash(ws, key)
			part = append(part, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(part) == 0 {
			return nil
		}
		for _, r := range part {
			if _, err := update.ExecContext(ctx, r.hash, r.seq); err != nil {
				return err
			}
		}
		after = part[len(part)-1].seq
	}
}
