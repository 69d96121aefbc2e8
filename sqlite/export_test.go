package sqlite

import (
	"database/sql"
	"os"
)

// WriterDB is the writer connection without the flush DB does, for tests
// that change the tables under a materializer that is failing.
func WriterDB(s *Store) *sql.DB { return s.w }

// SwapJournalFile makes the journal write to f, to fail its writes for real.
func SwapJournalFile(s *Store, f *os.File) (old *os.File) {
	old, s.j.f = s.j.f, f
	return old
}

// JournalPath is the open journal file.
func JournalPath(s *Store) string { return s.j.cur.path }

// SetTailMax makes the store index its idempotency keys every n keys;
// set it right after Open, before anything is written.
func SetTailMax(s *Store, n int) { s.tailMax = n }
