package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultStreams is how many balance streams the http/hot+streams row opens
// on its workspace.
const DefaultStreams = 2000

// streams holds open balance streams on one workspace and remembers the
// last `used` each of them saw.
type streams struct {
	tr     *http.Transport
	cancel context.CancelFunc
	wg     sync.WaitGroup
	last   []atomic.Int64
	opened atomic.Int64
	failed atomic.Int64
}

// openStreams opens n streams on a workspace of the server at base with the
// secret, and returns once every one has had its first event.
func openStreams(ctx context.Context, base, secret, workspaceID string, n int) (*streams, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &streams{
		tr: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: n,
			MaxConnsPerHost:     0,
		},
		cancel: cancel,
		last:   make([]atomic.Int64, n),
	}
	hc := &http.Client{Transport: s.tr}
	u := base + "/v1/workspaces/" + url.PathEscape(workspaceID) + "/balance/stream?access_token=" + url.QueryEscape(secret)
	first := make(chan error, n)
	for i := range n {
		s.last[i].Store(-1)
		s.wg.Go(func() {
			req, _ := http.NewRequestWithContext(sctx, "GET", u, nil)
			res, err := hc.Do(req)
			if err != nil {
				first <- err
				return
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				first <- fmt.Errorf("stream %d: status %d", i, res.StatusCode)
				return
			}
			sc := bufio.NewScanner(res.Body)
			sent := false
			for sc.Scan() {
				line, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				var b struct{ Used int64 }
				if json.Unmarshal([]byte(line), &b) == nil {
					s.last[i].Store(b.Used)
					if !sent {
						sent = true
						s.opened.Add(1)
						first <- nil
					}
				}
			}
			if !sent {
				first <- fmt.Errorf("stream %d ended before its first event", i)
			}
		})
	}
	for range n {
		select {
		case err := <-first:
			if err != nil {
				s.failed.Add(1)
				s.close()
				return nil, err
			}
		case <-ctx.Done():
			s.close()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// waitFinal waits (up to timeout) until every stream saw used == want, and
// returns how many did.
func (s *streams) waitFinal(want int64, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for i := range s.last {
			if s.last[i].Load() == want {
				n++
			}
		}
		if n == len(s.last) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *streams) close() {
	s.cancel()
	s.wg.Wait()
	s.tr.CloseIdleConnections()
}
