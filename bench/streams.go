package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
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
				line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
				if !ok {
					continue
				}
				if used, ok := balanceUsed(line); ok {
					s.last[i].Store(used)
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

// balanceUsed reads the "used" field of a balance event's JSON. The
// streams stand in for browsers on other machines, so what they cost here
// is the bench's, not the service's: a scan for the one field, without a
// copy of the line or a full decode (json.Unmarshal of each event was 0.9%
// of the http/hot+streams row's CPU, the Scanner's strings another part).
func balanceUsed(data []byte) (int64, bool) {
	_, rest, ok := bytes.Cut(data, []byte(`"used":`))
	if !ok {
		return 0, false
	}
	var v int64
	n := 0
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '9'; n++ {
		if n == 18 {
			return 0, false // more than a balance holds
		}
		v = v*10 + int64(rest[n]-'0')
	}
	return v, n > 0
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
