package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credits-dev/credits/internal/pgtest"
	"github.com/credits-dev/credits/internal/testserver"
)

// These tests run the real binary on PostgreSQL: two instances sharing one
// schema must never oversell a workspace nor charge one idempotency key
// twice, and one instance must survive losing its database: 503 while it is
// gone, nothing charged by the failed requests, and back to work without a
// restart once it returns.

const heldImageBody = `{"operation":"image_1k"}` // 30 credits, held

// answer is what one request got back.
type answer struct {
	status int
	ctype  string
	body   []byte
	err    error // transport error: no answer
}

// problemCode is the code of a problem+json answer, or "".
func (a answer) problemCode() string {
	if !strings.HasPrefix(a.ctype, "application/problem+json") {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(a.body, &p)
	return p.Code
}

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	return fmt.Sprintf("%d %s %s", a.status, a.ctype, strings.TrimSpace(string(a.body)))
}

// newRequest makes an admin request; hdr holds header name, value pairs.
func newRequest(t *testing.T, method, url, body string, hdr ...string) *http.Request {
	t.Helper()
	return testserver.NewRequest(t, method, url, testAdminKey, body, hdr...)
}

// send sends req and reads the whole answer; it never fails the test.
func send(client *http.Client, req *http.Request) answer {
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{err: err}
	}
	return answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}
}

// chargeOut is the part of a charge the tests look at.
type chargeOut struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Cost   int64  `json:"cost"`
}

func decodeCharge(t *testing.T, a answer) chargeOut {
	t.Helper()
	var c chargeOut
	if err := json.Unmarshal(a.body, &c); err != nil || c.ID == "" {
		t.Errorf("bad charge body %q: %v", a.body, err)
	}
	return c
}

// checkLedger walks the ledger pages on base back to the cycle's grant,
// checks that every available_after is the running sum, that the sum is
// the balance's available, and returns the number of hold entries.
func checkLedger(t *testing.T, base, ws string, available int64) (holds int) {
	t.Helper()
	entries := ledgerSinceGrant(t, base, ws)
	var sum int64
	for i, e := range entries {
		sum += e.Amount
		if e.AvailableAfter != sum {
			t.Errorf("%s on %s: ledger entry %d (%s %+d): available_after %d, running sum %d", ws, base, i, e.Type, e.Amount, e.AvailableAfter, sum)
		}
		if e.Type == "hold" {
			holds++
		}
	}
	if sum != available {
		t.Errorf("%s on %s: the ledger since the grant sums to %d, available is %d", ws, base, sum, available)
	}
	return holds
}

// logServerVersion logs the PostgreSQL server's version.
func logServerVersion(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.BaseURL())
	if err != nil {
		t.Logf("SELECT version(): %v", err)
		return
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		t.Logf("SELECT version(): %v", err)
		return
	}
	t.Logf("PostgreSQL: %s", v)
}

func TestTwoInstancesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary on PostgreSQL; skipped with -short")
	}
	db := pgtest.URL(t)
	logServerVersion(t)
	bin := buildBinary(t, t.TempDir())
	a := startProc(t, bin, db)
	b := startProc(t, bin, db)
	bases := []string{a.url, b.url}
	dump := func() {
		if t.Failed() {
			t.Logf("instance A log:\n%s\ninstance B log:\n%s", a.log, b.log)
		}
	}
	t.Cleanup(dump)

	const n = 500
	client := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true},
	}
	t.Cleanup(client.CloseIdleConnections)

	// fire sends the requests at once, released together by a barrier, and
	// returns the answers in order.
	fire := func(reqs []*http.Request) []answer {
		out := make([]answer, len(reqs))
		start := make(chan struct{})
		var ready, wg sync.WaitGroup
		for i, req := range reqs {
			ready.Add(1)
			wg.Go(func() {
				ready.Done()
				<-start
				out[i] = send(client, req)
			})
		}
		ready.Wait()
		close(start)
		wg.Wait()
		return out
	}

	t.Run("distinct_keys", func(t *testing.T) {
		ws := "mi-race"
		callJSON(t, 201, "POST", a.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Race","plan":"starter"}`, nil)
		reqs := make([]*http.Request, n)
		for i := range reqs {
			reqs[i] = newRequest(t, "POST", bases[i%2]+"/v1/workspaces/"+ws+"/charges", heldImageBody, "Idempotency-Key", fmt.Sprintf("race-%d", i))
		}
		start := time.Now()
		answers := fire(reqs)
		t.Logf("%d charges answered in %v", n, time.Since(start).Round(time.Millisecond))

		created, refused := 0, 0
		perInstance := [2]int{}
		ids := map[string]int{}
		for i, ans := range answers {
			switch {
			case ans.status == http.StatusCreated:
				created++
				perInstance[i%2]++
				c := decodeCharge(t, ans)
				if c.Status != "held" || c.Cost != 30 {
					t.Errorf("charge %d: status %q cost %d, want held 30: %s", i, c.Status, c.Cost, ans.body)
				}
				if j, dup := ids[c.ID]; dup {
					t.Errorf("requests %d and %d (distinct keys) got one charge %s", j, i, c.ID)
				}
				ids[c.ID] = i
			case ans.status == http.StatusPaymentRequired && ans.problemCode() == "insufficient_credits":
				refused++
				var p struct {
					Balance, Required, Shortfall int64
				}
				if err := json.Unmarshal(ans.body, &p); err != nil || p.Required != 30 || p.Balance >= 30 || p.Shortfall != p.Required-p.Balance {
					t.Errorf("charge %d: bad 402 problem: %s", i, ans.body)
				}
			default:
				t.Errorf("charge %d (to %s): %v", i, reqs[i].URL.Host, ans)
			}
		}
		t.Logf("201: %d (A %d, B %d), 402: %d", created, perInstance[0], perInstance[1], refused)
		if created != 33 || refused != n-33 {
			t.Errorf("%d got 201 and %d got 402, want 33 and %d", created, refused, n-33)
		}
		for _, base := range bases {
			bal := getBalance(t, base, testAdminKey, ws)
			if bal.Available != 10 || bal.Held != 990 || bal.Used != 0 || bal.Granted != 1000 {
				t.Errorf("balance on %s: %+v, want available 10, held 990, used 0, granted 1000", base, bal)
			}
			if holds := checkLedger(t, base, ws, bal.Available); holds != created {
				t.Errorf("ledger on %s: %d holds, %d charges answered 201", base, holds, created)
			}
		}
	})

	t.Run("same_key", func(t *testing.T) {
		ws := "mi-retry"
		callJSON(t, 201, "POST", b.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Retry","plan":"starter"}`, nil)
		const m = 60
		reqs := make([]*http.Request, m)
		for i := range reqs {
			reqs[i] = newRequest(t, "POST", bases[i%2]+"/v1/workspaces/"+ws+"/charges", heldImageBody, "Idempotency-Key", "retried-key")
		}
		answers := fire(reqs)
		created, inProgress := 0, 0
		id := ""
		for i, ans := range answers {
			switch {
			case ans.status == http.StatusCreated:
				created++
				c := decodeCharge(t, ans)
				if id == "" {
					id = c.ID
				} else if c.ID != id {
					t.Errorf("request %d (to %s): charge %s, another got %s", i, reqs[i].URL.Host, c.ID, id)
				}
			case ans.status == http.StatusConflict && ans.problemCode() == "request_in_progress":
				inProgress++
			default:
				t.Errorf("request %d (to %s): %v", i, reqs[i].URL.Host, ans)
			}
		}
		t.Logf("one key, %d requests: %d got 201, %d got 409 request_in_progress", m, created, inProgress)
		if created == 0 {
			t.Fatalf("no request got 201")
		}
		// Sent again to each instance once the storm is over: the first answer.
		for _, base := range bases {
			var c chargeOut
			callJSON(t, 201, "POST", base+"/v1/workspaces/"+ws+"/charges", testAdminKey, heldImageBody, &c, "Idempotency-Key", "retried-key")
			if c.ID != id {
				t.Errorf("replay on %s: charge %s, want %s", base, c.ID, id)
			}
		}
		for _, base := range bases {
			bal := getBalance(t, base, testAdminKey, ws)
			if bal.Available != 970 || bal.Held != 30 || bal.Used != 0 || bal.Granted != 1000 {
				t.Errorf("balance on %s: %+v, want available 970, held 30 (charged once)", base, bal)
			}
			if holds := checkLedger(t, base, ws, bal.Available); holds != 1 {
				t.Errorf("ledger on %s: %d holds, want 1", base, holds)
			}
		}
	})
}

// pgProxy is a TCP proxy to PostgreSQL that can cut the line.
type pgProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, upstream string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *pgProxy) addr() string { return p.ln.Addr().String() }

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close() // refused
			continue
		}
		p.wg.Go(func() { p.pipe(c) })
	}
}

func (p *pgProxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.conns == nil {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cutLine closes every proxied connection and refuses new ones.
func (p *pgProxy) cutLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// restore accepts connections again.
func (p *pgProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *pgProxy) close() {
	p.ln.Close()
	p.cutLine()
	p.wg.Wait()
}

func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary on PostgreSQL; skipped with -short")
	}
	db := pgtest.URL(t)
	u, err := url.Parse(db)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Skipf("cannot put a proxy in front of %q: not a postgres:// URL with a host", pgtest.BaseURL())
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), "5432")
	}
	proxy := startProxy(t, upstream)
	u.Host = proxy.addr()
	bin := buildBinary(t, t.TempDir())
	p := startProc(t, bin, u.String())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", p.log)
		}
	})

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	const ws = "outage"
	chargeURL := p.url + "/v1/workspaces/" + ws + "/charges"
	balanceURL := p.url + "/v1/workspaces/" + ws + "/balance"
	charge := func(key string) answer {
		return send(client, newRequest(t, "POST", chargeURL, heldImageBody, "Idempotency-Key", key))
	}
	get := func(u string) answer { return send(client, newRequest(t, "GET", u, "")) }

	// Connected: a charge works.
	callJSON(t, 201, "POST", p.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Outage","plan":"pro"}`, nil)
	charged := map[string]string{} // charge id -> key, answered 201
	if ans := charge("before-cut"); ans.status != http.StatusCreated {
		t.Fatalf("charge before the cut: %v", ans)
	} else {
		charged[decodeCharge(t, ans).ID] = "before-cut"
	}

	// Cut: within a few seconds everything that needs the store is 503
	// unavailable, and nothing is ever 2xx.
	proxy.cutLine()
	cutAt := time.Now()
	var failedKeys []string
	unavailable := func(what string, ans answer) bool {
		if ans.err != nil {
			t.Errorf("%s while cut: %v", what, ans)
			return false
		}
		if ans.status >= 200 && ans.status < 300 {
			t.Errorf("%s while cut got %v", what, ans)
			return false
		}
		return ans.status == http.StatusServiceUnavailable && ans.problemCode() == "unavailable"
	}
	var seen503 [3]bool // charge, balance, healthz
	var firstAll time.Duration
	for i := 0; time.Since(cutAt) < 8*time.Second; i++ {
		if i < 60 { // at most 60 keys: their retries must fit the plan
			key := fmt.Sprintf("while-cut-%d", i)
			ans := charge(key)
			if ans.status == http.StatusCreated {
				charged[decodeCharge(t, ans).ID] = key
			} else {
				failedKeys = append(failedKeys, key)
			}
			seen503[0] = unavailable("POST charge", ans) || seen503[0]
		}
		seen503[1] = unavailable("GET balance", get(balanceURL)) || seen503[1]
		seen503[2] = unavailable("GET /healthz", get(p.url+"/healthz")) || seen503[2]
		if seen503 == [3]bool{true, true, true} {
			if firstAll == 0 {
				firstAll = time.Since(cutAt)
			}
			// Stay cut a little longer; every answer must stay non-2xx.
			if time.Since(cutAt) > firstAll+time.Second {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if firstAll == 0 {
		t.Fatalf("8 s after the cut, still no 503 unavailable from: charge %v, balance %v, healthz %v (want all)", !seen503[0], !seen503[1], !seen503[2])
	}
	// A burst at once while cut: all 503, none charged.
	var burst sync.WaitGroup
	var burstMu sync.Mutex
	for i := range 8 {
		key := fmt.Sprintf("burst-%d", i)
		burst.Go(func() {
			ans := charge(key)
			burstMu.Lock()
			defer burstMu.Unlock()
			if !unavailable("POST charge (burst)", ans) {
				t.Errorf("burst charge %s while cut: %v, want 503 unavailable", key, ans)
			}
			if ans.status == http.StatusCreated {
				charged[decodeCharge(t, ans).ID] = key
			} else {
				failedKeys = append(failedKeys, key)
			}
		})
	}
	burst.Wait()
	t.Logf("cut for %v: all three answered 503 unavailable after %v; %d charges refused", time.Since(cutAt).Round(time.Millisecond), firstAll.Round(time.Millisecond), len(failedKeys))

	// Restore: back without a restart, within ~10 s.
	proxy.restore()
	restoredAt := time.Now()
	var bal balance
	for {
		ans := get(balanceURL)
		if ans.status == http.StatusOK {
			if err := json.Unmarshal(ans.body, &bal); err != nil {
				t.Fatalf("balance: %v: %s", err, ans.body)
			}
			break
		}
		if time.Since(restoredAt) > 12*time.Second {
			t.Fatalf("12 s after the restore, GET balance still answers %v", ans)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		ans := get(p.url + "/healthz")
		if ans.status == http.StatusOK {
			break
		}
		if time.Since(restoredAt) > 12*time.Second {
			t.Fatalf("12 s after the restore, GET /healthz still answers %v", ans)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("answering again %v after the restore", time.Since(restoredAt).Round(time.Millisecond))
	select {
	case <-p.exited:
		t.Fatalf("the server exited during the outage: %v", p.cmd.ProcessState)
	default:
	}

	// Only the 201s were charged.
	want := int64(30 * len(charged))
	if bal.Held != want || bal.Used != 0 || bal.Available+bal.Held != bal.Granted {
		t.Errorf("balance after the restore %+v: want held %d (%d charges answered 201), nothing from the %d refused", bal, want, len(charged), len(failedKeys))
	}
	if holds := checkLedger(t, p.url, ws, bal.Available); holds != len(charged) {
		t.Errorf("ledger after the restore: %d holds, %d charges answered 201", holds, len(charged))
	}

	// A retry of each refused request now succeeds, once.
	for _, key := range failedKeys {
		first := charge(key)
		if first.status != http.StatusCreated {
			t.Errorf("retry of %s after the restore: %v", key, first)
			continue
		}
		c := decodeCharge(t, first)
		if other, dup := charged[c.ID]; dup {
			t.Errorf("retry of %s answered charge %s of key %s", key, c.ID, other)
		}
		charged[c.ID] = key
		again := charge(key)
		if again.status != http.StatusCreated || decodeCharge(t, again).ID != c.ID {
			t.Errorf("second retry of %s: %v, want 201 with charge %s", key, again, c.ID)
		}
	}
	bal = getBalance(t, p.url, testAdminKey, ws)
	if want := int64(30 * len(charged)); bal.Held != want || bal.Used != 0 {
		t.Errorf("balance after the retries %+v: want held %d (%d charges)", bal, want, len(charged))
	}
	if holds := checkLedger(t, p.url, ws, bal.Available); holds != len(charged) {
		t.Errorf("ledger after the retries: %d holds, want %d", holds, len(charged))
	}
}

// TestPostgresKillOneInstance runs charge load spread over two instances on
// one database and kills one with SIGKILL at a random moment, while the
// other keeps serving (every request sent to it succeeds; a client whose
// instance died moves to it, as a load balancer would), then restarts it;
// several rounds. Every acknowledged charge is there, a retry of every
// request that got no answer charges exactly once, and credits verify
// passes.
func TestPostgresKillOneInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary on PostgreSQL; skipped with -short")
	}
	db := pgtest.URL(t)
	bin := buildBinary(t, t.TempDir())
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	t.Logf("random seed %d", seed)
	procs := [2]*proc{startProcEnv(t, bin, db, noRateLimit), startProcEnv(t, bin, db, noRateLimit)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("instance 0 log:\n%s\ninstance 1 log:\n%s", procs[0].log, procs[1].log)
		}
	})
	for round := 1; round <= 3; round++ {
		ws := fmt.Sprintf("pg-kill-%d", round)
		callJSON(t, 201, "POST", procs[round%2].url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Kill","plan":"pro"}`, nil)
		victim := rng.IntN(2)
		delay := time.Duration(100+rng.IntN(400)) * time.Millisecond
		res, after := spreadLoad(t, [2]string{procs[0].url, procs[1].url}, victim, ws, delay, func() {
			if err := procs[victim].cmd.Process.Kill(); err != nil {
				t.Errorf("kill: %v", err)
			}
			<-procs[victim].exited
		})
		if len(res.acked) == 0 || after == 0 {
			t.Fatalf("round %d: %d charges acknowledged, %d by the survivor after the kill", round, len(res.acked), after)
		}
		restart := time.Now()
		procs[victim] = startProcEnv(t, bin, db, noRateLimit)
		t.Logf("round %d: killed instance %d %v into the load; the other acknowledged %d charges after", round, victim, delay, after)
		verifyLoad(t, procs[victim].url, ws, res, restart)
		// Both instances see the same books.
		if a, b := getBalance(t, procs[0].url, testAdminKey, ws), getBalance(t, procs[1].url, testAdminKey, ws); a != b {
			t.Errorf("the instances disagree: %+v and %+v", a, b)
		}
	}
	out, err := exec.Command(bin, "verify", "--db", db).CombinedOutput()
	if err != nil {
		t.Fatalf("credits verify: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// spreadLoad sends charges on ws from 8 workers, half to each instance,
// kills instance victim (with kill) delay into the load, lets the survivor
// serve alone for a while, then stops. Requests to the survivor must all
// succeed; a worker whose request to the victim got no answer records the
// key and moves to the survivor. It returns what the load saw and how many
// charges the survivor acknowledged after the kill.
func spreadLoad(t *testing.T, urls [2]string, victim int, ws string, delay time.Duration, kill func()) (*loadResult, int) {
	t.Helper()
	const workers, perWorker = 8, 300
	client := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	res := &loadResult{acked: map[string]string{}}
	var killed atomic.Bool
	var afterKill atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			target := w % 2
			for i := range perWorker {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("%s-w%d-%d", ws, w, i)
				wasKilled := killed.Load()
				status, id, err := postCharge(client, urls[target], ws, key)
				if err == nil && status == http.StatusCreated {
					res.mu.Lock()
					res.acked[key] = id
					res.mu.Unlock()
					if wasKilled && target != victim {
						afterKill.Add(1)
					}
					continue
				}
				if target != victim {
					t.Errorf("the surviving instance failed charge %s: %d %v", key, status, err)
					return
				}
				if err == nil && status != http.StatusServiceUnavailable {
					t.Errorf("charge %s: unexpected status %d", key, status)
					return
				}
				res.mu.Lock()
				res.unknown = append(res.unknown, key)
				if err != nil {
					res.errs = append(res.errs, err.Error())
				} else {
					res.got503++
				}
				res.mu.Unlock()
				target = 1 - victim // the load balancer takes it out
			}
			res.full.Add(1)
		})
	}
	time.Sleep(delay)
	killed.Store(true)
	kill()
	// The survivor serves alone for a while.
	for deadline := time.Now().Add(2 * time.Second); afterKill.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	return res, int(afterKill.Load())
}
