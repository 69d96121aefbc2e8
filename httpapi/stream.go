package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// balanceStream sends the balance at connect and after every change as
// server-sent events (at most one per StreamInterval), with a comment line
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
	send := func(v any) error {
		data, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: balance\ndata: %s\n\n", data); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(b); err != nil {
		return nil
	}
	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
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
			// At most one event per StreamInterval: changes in between
			// fold into the newest balance (the subscription keeps only
			// that), so thousands of open streams cost little however
			// fast charges come, and each still ends on the last balance.
			select {
			case <-r.Context().Done():
				return nil
			case <-s.streams.Done():
				return nil
			case <-time.After(s.streamInterval):
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
