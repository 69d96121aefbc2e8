package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

func TestIdemTailNewestFirst(t *testing.T) {
	t.Parallel()
	tail := newIdemTail()
	tail.add([]tailKey{{hash: 7, seq: 1}, {hash: 9, seq: 2}})
	tail.add([]tailKey{{hash: 7, seq: 3}, {hash: 7, seq: 5}})
	for _, c := range []struct {
		hash int64
		want string
	}{{7, "[5 3 1]"}, {9, "[2]"}, {8, "[]"}} {
		if got := fmt.Sprint(tail.lookup(nil, c.hash)); got != c.want {
			t.Errorf("hash %d: %s, want %s", c.hash, got, c.want)
		}
	}
	if tail.len() != 4 {
		t.Errorf("len %d, want 4", tail.len())
	}
	tail.clear()
	if got := tail.lookup(nil, 7); len(got) != 0 || tail.len() != 0 {
		t.Errorf("after clear: %v, len %d", got, tail.len())
	}
}

// Keys are found whether they are in the index or still in the tail, before
// and after a restart; the sweep takes the index's entries with the rows; a
// key stored after the sweep emptied the table is found after a restart.
func TestIdempotencyIndexedInRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credits.db")
	const tailMax = 5
	open := func() (*Store, *ledger.Engine) {
		t.Helper()
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		s.tailMax = tailMax
		e, err := ledger.New(s, credits.DefaultCatalog(), ledger.Options{SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s, e
	}
	closeBoth := func(s *Store, e *ledger.Engine) {
		t.Helper()
		e.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	hold := func(e *ledger.Engine, key, op string) (string, error) {
		r, err := e.Hold(ctx, ledger.HoldParams{WorkspaceID: "w", IdempotencyKey: key, Operation: op})
		if err != nil {
			return "", err
		}
		return r.Charge.ID, nil
	}
	count := func(s *Store, q string) int64 {
		t.Helper()
		var n int64
		if err := s.w.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	s, e := open()
	if _, _, err := e.CreateWorkspace(ctx, ledger.CreateWorkspaceParams{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	const keys = 12
	charges := map[string]string{}
	for i := range keys {
		k := fmt.Sprint("key-", i)
		id, err := hold(e, k, "content_rewrite")
		if err != nil {
			t.Fatal(err)
		}
		charges[k] = id
		if err := s.Flush(ctx); err != nil { // a window each
			t.Fatal(err)
		}
	}
	// Indexed at 5 and 10 keys: 10 in the index, 2 in the tail.
	if n := count(s, `SELECT COUNT(*) FROM idempotency_index`); n != 10 {
		t.Errorf("%d keys in the index, want 10", n)
	}
	if n := count(s, `SELECT indexed FROM journal_state`); n != 10 || s.indexed != 10 {
		t.Errorf("indexed up to %d (store %d), want 10", n, s.indexed)
	}
	if s.tail.len() != 2 {
		t.Errorf("%d keys in the tail, want 2", s.tail.len())
	}
	retries := func(e *ledger.Engine) {
		t.Helper()
		for k, want := range charges {
			got, err := hold(e, k, "content_rewrite")
			if err != nil {
				t.Fatalf("retry of %s: %v", k, err)
			}
			if got != want {
				t.Errorf("retry of %s held %s, want the first charge %s", k, got, want)
			}
		}
		// Another request under an indexed key and a tail key is refused.
		for _, k := range []string{"key-3", "key-11"} {
			_, err := hold(e, k, "section_generation")
			var ce *credits.Error
			if !errors.As(err, &ce) || ce.Code != credits.CodeIdempotencyKeyReused {
				t.Errorf("%s for another operation: %v, want %s", k, err, credits.CodeIdempotencyKeyReused)
			}
		}
	}
	retries(e)

	// Two keys under one hash in the tail (as a collision would put
	// them): each lookup takes its own key's row, not the newer other.
	var seq10 int64
	if err := s.w.QueryRowContext(ctx, `SELECT seq FROM idempotency WHERE key = 'key-10'`).Scan(&seq10); err != nil {
		t.Fatal(err)
	}
	s.tail.add([]tailKey{{hash: idemHash("w", "key-11"), seq: seq10}})
	if got, err := hold(e, "key-11", "content_rewrite"); err != nil || got != charges["key-11"] {
		t.Errorf("key-11 under a shared hash held %s (%v), want %s", got, err, charges["key-11"])
	}

	// credits verify finds every key, and names one whose index entry is
	// lost or whose hash is wrong.
	unfindable := func() []string {
		t.Helper()
		rep, err := ledger.Verify(ctx, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, v := range rep.Violations {
			if v.Code == ledger.ViolationIdemUnfindable {
				keys = append(keys, v.ID)
			}
		}
		return keys
	}
	if got := unfindable(); len(got) != 0 {
		t.Fatalf("verify calls %v unfindable", got)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`DELETE FROM idempotency_index WHERE seq = (SELECT seq FROM idempotency WHERE key = 'key-3')`)
	exec(`UPDATE idempotency SET hash = hash + 1 WHERE key = 'key-11'`) // in the tail
	if got := fmt.Sprint(unfindable()); got != "[key-3 key-11]" {
		t.Errorf("verify calls %s unfindable, want [key-3 key-11]", got)
	}
	exec(`INSERT INTO idempotency_index (hash, seq) SELECT hash, seq FROM idempotency WHERE key = 'key-3'`)
	exec(`UPDATE idempotency SET hash = hash - 1 WHERE key = 'key-11'`)
	closeBoth(s, e)

	s, e = open()
	if s.tail.len() != 2 {
		t.Errorf("after a restart %d keys in the tail, want 2", s.tail.len())
	}
	retries(e)

	// The sweep deletes the rows and their index entries.
	if n, err := s.DeleteIdempotency(ctx, time.Now().Add(time.Hour)); err != nil || n != keys {
		t.Fatalf("swept %d keys (%v), want %d", n, err, keys)
	}
	if n := count(s, `SELECT COUNT(*) FROM idempotency_index`); n != 0 {
		t.Errorf("%d index entries left after the sweep", n)
	}
	closeBoth(s, e)

	// The table is empty, the mark is at 10: a new key's row goes above it,
	// and is found after a restart.
	s, e = open()
	id, err := hold(e, "after-sweep", "content_rewrite")
	if err != nil {
		t.Fatal(err)
	}
	closeBoth(s, e)
	s, e = open()
	defer closeBoth(s, e)
	if got, err := hold(e, "after-sweep", "content_rewrite"); err != nil || got != id {
		t.Errorf("retry after the sweep and a restart held %s (%v), want %s", got, err, id)
	}
}
