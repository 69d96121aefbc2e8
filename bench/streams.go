package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
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
//
// The streams stand in for browsers on other machines, so each is one
// goroutine reading its own connection (http.ReadResponse over a dialed
// net.Conn), not an http.Transport's three (its read and write loops and
// the caller): in this process their goroutines' stacks are scanned by
// every garbage collection the server and the charging clients pay for.
type streams struct {
	tls    *tls.Config // for an https server: the charging clients' (nil: the system's roots)
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
	last   []atomic.Int64
	opened atomic.Int64
	events atomic.Int64 // balance events received, all streams
}

// openStreams opens n streams on a workspace of the server at base with the
// secret, and returns once every one has had its first event. tlsConf is
// used for an https base (nil: the system's roots).
func openStreams(ctx context.Context, base, secret, workspaceID string, n int, tlsConf *tls.Config) (*streams, error) {
	u, err := url.Parse(base + "/v1/workspaces/" + url.PathEscape(workspaceID) + "/balance/stream?access_token=" + url.QueryEscape(secret))
	if err != nil {
		return nil, err
	}
	s := &streams{tls: tlsConf, last: make([]atomic.Int64, n)}
	first := make(chan error, n)
	for i := range n {
		s.last[i].Store(-1)
		s.wg.Go(func() {
			sent := false
			err := s.read(ctx, u, func(used int64) {
				s.last[i].Store(used)
				if !sent {
					sent = true
					s.opened.Add(1)
					first <- nil
				}
			})
			if !sent {
				if err == nil {
					err = errors.New("it ended before its first event")
				}
				first <- fmt.Errorf("stream %d: %w", i, err)
			}
		})
	}
	for range n {
		select {
		case err := <-first:
			if err != nil {
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

// read opens one stream and calls seen with the used of each balance event
// until the stream ends or is closed.
func (s *streams) read(ctx context.Context, u *url.URL, seen func(used int64)) error {
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	if u.Scheme == "https" {
		cfg := &tls.Config{}
		if s.tls != nil {
			cfg = s.tls.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		conn = tls.Client(conn, cfg)
	}
	if !s.track(conn) {
		return errors.New("closed")
	}
	defer conn.Close()
	req, err := http.NewRequest("GET", u.String(), nil)
	if err != nil {
		return err
	}
	if err := req.Write(conn); err != nil {
		return err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		if used, ok := balanceUsed(line); ok {
			s.events.Add(1)
			seen(used)
		}
	}
	return sc.Err()
}

// track remembers a stream's connection for close, or reports false when
// the streams are already closed.
func (s *streams) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns = append(s.conns, c)
	return true
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
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
