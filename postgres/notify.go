package postgres

import (
	"context"
	"time"
)

// Committed balance changes are announced by one goroutine per Store, not by
// each batch: while one NOTIFY statement runs, the changes of the batches
// committing meanwhile gather, and the next statement announces them all,
// each workspace once. Every NOTIFY is a transaction and a round trip of its
// own, and PostgreSQL serializes the transactions that notify. Statements
// are at least notifyEvery apart, so under load each carries many batches'
// changes; a stream learns of a change at most that much later.

const notifyEvery = 10 * time.Millisecond

// announce queues workspace ids to announce.
func (s *Store) announce(ids []string) {
	s.notifyMu.Lock()
	s.notifyIDs = append(s.notifyIDs, ids...)
	s.notifyMu.Unlock()
	select {
	case s.notifyWake <- struct{}{}:
	default:
	}
}

func (s *Store) announceLoop() {
	defer close(s.announced)
	pause := time.NewTimer(0)
	for {
		select {
		case <-s.notifyWake:
		case <-s.quit:
			s.notifyPending()
			return
		}
		<-pause.C
		pause.Reset(notifyEvery)
		s.notifyPending()
	}
}

// notifyPending announces the queued ids, each once.
func (s *Store) notifyPending() {
	s.notifyMu.Lock()
	ids := s.notifyIDs
	s.notifyIDs = nil
	s.notifyMu.Unlock()
	if len(ids) == 0 {
		return
	}
	seen := make(map[string]bool, len(ids))
	uniq := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `SELECT pg_notify('`+notifyChannel+`', id) FROM unnest($1::text[]) AS id`, uniq)
}
