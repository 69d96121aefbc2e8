package httpapi

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"time"

	"github.com/credits-dev/credits"
)

// eventCache encodes each balance once for all the streams of its
// workspace: a fan-out hands every one of them the same balance at once
// (json.Marshal in each stream was 15% of the streams' CPU in the server,
// in a profile of credits bench's http/hot+streams row). A slot per hash of
// the workspace, so it never grows; two workspaces sharing a slot only
// encode more often.
type eventCache struct {
	seed  maphash.Seed
	slots [256]struct {
		mu    sync.Mutex
		bal   credits.Balance
		event []byte // never changed once made: streams write it as is
	}
}

func newEventCache() *eventCache { return &eventCache{seed: maphash.MakeSeed()} }

// event returns the server-sent event of b.
func (c *eventCache) event(b credits.Balance) []byte {
	sl := &c.slots[maphash.String(c.seed, b.WorkspaceID)%uint64(len(c.slots))]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.event == nil || sl.bal != b {
		sl.bal, sl.event = b, balanceEvent(b)
	}
	return sl.event
}

func balanceEvent(b credits.Balance) []byte {
	data, _ := json.Marshal(b) // plain fields: cannot fail
	ev := make([]byte, 0, len(data)+len("event: balance\ndata: \n\n"))
	ev = append(ev, "event: balance\ndata: "...)
	ev = append(ev, data...)
	return append(ev, "\n\n"...)
}

// DefaultStreamEvents is Config.StreamEvents' default: at the default
// StreamInterval, a workspace's first 1,000 streams get every fold of its
// balance, and more share 2,000 events a second (in credits bench's
// http/hot+streams row, 2,000 streams at two events a second each cost
// the server 22 µs of CPU an event, 7% of the machine with the bench's
// readers).
const DefaultStreamEvents = 2000

// balanceStream sends the balance at connect and after every change as
// server-sent events (at most one per streamWait), with a comment line
// when idle so proxies keep the connection open.
func (s *Server) balanceStream(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	// Subscribe before the first read so no change falls between them.
	updates, cancel := s.engine.Subscribe(id)
	defer cancel()
	b, err := s.engine.Balance(r.Context(), id)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b credits.Balance) error {
		if _, err := w.Write(s.events.event(b)); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(b); err != nil {
		return nil
	}
	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	// One timer for the stream's folds (Go 1.23 timers: Reset after a
	// fire needs no drain), not one allocated per event.
	fold := time.NewTimer(time.Hour)
	fold.Stop()
	defer fold.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.streams.Done():
			return nil
		case b := <-updates:
			if err := send(b); err != nil {
				return nil
			}
			// At most one event per streamWait: changes in between
			// fold into the newest balance (the subscription keeps only
			// that), so thousands of open streams cost little however
			// fast charges come, and each still ends on the last balance.
			fold.Reset(s.streamWait(id))
			select {
			case <-r.Context().Done():
				return nil
			case <-s.streams.Done():
				return nil
			case <-fold.C:
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		}
	}
}

// streamWait is the least time between two events of a stream of the
// workspace: StreamInterval, or longer when its streams are so many that
// together they would get more than StreamEvents a second.
func (s *Server) streamWait(workspaceID string) time.Duration {
	wait := s.streamInterval
	if s.streamEvents > 0 {
		n := s.engine.Subscribers(workspaceID)
		wait = max(wait, time.Duration(n)*time.Second/time.Duration(s.streamEvents))
	}
	return wait
}
