package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as a child process and kill it under
// load: every charge the server acknowledged (201) must be on disk after a
// restart, and a retry of a request whose answer never came must charge at
// most once.

const chargeBody = `{"operation":"content_rewrite","capture":true}` // cost 1

// buildBinary builds cmd/credits into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "credits")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the binary in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// proc is a running `credits serve` child process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	log    *syncBuffer
	exited chan struct{} // closed once Wait returned
}

var listening = regexp.MustCompile(`msg=listening addr=(http://\S+)`)

// startProc starts `credits serve` on db and waits until it listens.
func startProc(t *testing.T, bin, db string) *proc {
	t.Helper()
	return startProcEnv(t, bin, db)
}

// noRateLimit turns the per-credential rate limit off: load tests send more
// than a client would.
const noRateLimit = "CREDITS_RATE_LIMIT=0"

// startProcEnv is startProc with more environment ("NAME=value").
func startProcEnv(t *testing.T, bin, db string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDITS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CREDITS_ADMIN_KEY="+testAdminKey)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: &syncBuffer{}, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.log, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.url = <-addr:
		return p
	case <-p.exited:
		t.Fatalf("credits serve exited before listening (%v):\n%s", cmd.ProcessState, p.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("credits serve did not listen within 20 s:\n%s", p.log)
	}
	return nil
}

// loadResult is what a load run saw.
type loadResult struct {
	mu      sync.Mutex
	acked   map[string]string // Idempotency-Key -> charge id, answered 201
	unknown []string          // keys whose answer never came (or was 503)
	got503  int               // of unknown, how many were the drain's 503
	errs    []string          // of unknown, the transport errors
	full    atomic.Int32      // workers that sent all their requests
}

// chargeLoad sends charges on workspace ws from workers goroutines, each at
// most perWorker, until the server goes away. Once acks charges were
// acknowledged (or 10 s passed) it calls interrupt, then waits for the
// workers.
func chargeLoad(t *testing.T, base, ws string, workers, perWorker, acks int, interrupt func()) *loadResult {
	t.Helper()
	client := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	res := &loadResult{acked: map[string]string{}}
	var n atomic.Int64
	reached := make(chan struct{})
	var reachedOnce sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("%s-w%d-%d", ws, w, i)
				status, id, err := postCharge(client, base, ws, key)
				switch {
				case err == nil && status == http.StatusCreated:
					res.mu.Lock()
					res.acked[key] = id
					res.mu.Unlock()
					if n.Add(1) == int64(acks) {
						reachedOnce.Do(func() { close(reached) })
					}
					continue
				case err != nil || status == http.StatusServiceUnavailable:
					// No answer, or the drain's 503: nothing is known
					// (a 503 stores no answer, so a retry runs again).
				default:
					t.Errorf("charge %s: unexpected status %d", key, status)
				}
				res.mu.Lock()
				res.unknown = append(res.unknown, key)
				if err != nil {
					res.errs = append(res.errs, err.Error())
				} else if status == http.StatusServiceUnavailable {
					res.got503++
				}
				res.mu.Unlock()
				return
			}
			res.full.Add(1)
		})
	}
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Logf("only %d charges acknowledged after 10 s", n.Load())
	}
	interrupt()
	wg.Wait()
	return res
}

// postCharge sends one charge; id is the charge's id on a 201.
func postCharge(client *http.Client, base, ws, key string) (status int, id string, err error) {
	req, err := http.NewRequest("POST", base+"/v1/workspaces/"+ws+"/charges", strings.NewReader(chargeBody))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		// A half-read answer is no answer.
		return 0, "", err
	}
	if resp.StatusCode == http.StatusCreated {
		var c struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || c.Status != "captured" {
			return resp.StatusCode, "", fmt.Errorf("bad 201 body %q: %v", b, err)
		}
		return resp.StatusCode, c.ID, nil
	}
	return resp.StatusCode, "", nil
}

type entry struct {
	Type           string `json:"type"`
	Amount         int64  `json:"amount"`
	AvailableAfter int64  `json:"available_after"`
	ChargeID       string `json:"charge_id"`
}

// ledgerSinceGrant walks the ledger pages (newest first) back to the current
// cycle's grant and returns those entries oldest first, grant included.
func ledgerSinceGrant(t *testing.T, base, ws string) []entry {
	t.Helper()
	var newestFirst []entry
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("the ledger does not end")
		}
		var page struct {
			Entries    []entry `json:"entries"`
			NextCursor *string `json:"next_cursor"`
		}
		u := base + "/v1/workspaces/" + ws + "/ledger?limit=500"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		callJSON(t, 200, "GET", u, testAdminKey, "", &page)
		for _, e := range page.Entries {
			newestFirst = append(newestFirst, e)
			if e.Type == "grant" {
				out := make([]entry, len(newestFirst))
				for i, e := range newestFirst {
					out[len(out)-1-i] = e
				}
				return out
			}
		}
		if page.NextCursor == nil || len(page.Entries) == 0 {
			t.Fatalf("%s: the ledger has no grant (%d entries)", ws, len(newestFirst))
		}
		cursor = *page.NextCursor
	}
}

// verifyLoad checks, on a restarted server, that every acknowledged charge
// is there, retries the unanswered ones and checks that each key charged
// exactly once and that the books balance. It returns how many unanswered
// requests had been charged before restart (their retry is a replay).
func verifyLoad(t *testing.T, base, ws string, res *loadResult, restart time.Time) (charged int) {
	t.Helper()
	ids := map[string]string{} // charge id -> key
	for key, id := range res.acked {
		var c struct {
			ID, WorkspaceID, Operation, Status string
		}
		code, b := call(t, "GET", base+"/v1/charges/"+id, testAdminKey, "")
		if code != 200 {
			t.Errorf("acknowledged charge %s (key %s) lost: %d %s", id, key, code, b)
			continue
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		if c.Status != "captured" {
			t.Errorf("acknowledged charge %s: status %q, want captured: %s", id, c.Status, b)
		}
		ids[id] = key
	}
	// A replay of an acknowledged request gives the same charge.
	replayed := 0
	for key, id := range res.acked {
		if replayed == 10 {
			break
		}
		replayed++
		var c struct{ ID string }
		callJSON(t, 201, "POST", base+"/v1/workspaces/"+ws+"/charges", testAdminKey, chargeBody, &c, "Idempotency-Key", key)
		if c.ID != id {
			t.Errorf("replay of %s: charge %s, want %s", key, c.ID, id)
		}
	}
	// The requests whose answer never came, sent again.
	for _, key := range res.unknown {
		var c struct {
			ID, Status string
			CreatedAt  time.Time `json:"created_at"`
		}
		callJSON(t, 201, "POST", base+"/v1/workspaces/"+ws+"/charges", testAdminKey, chargeBody, &c, "Idempotency-Key", key)
		if c.Status != "captured" {
			t.Errorf("retry of %s: status %q", key, c.Status)
		}
		if c.CreatedAt.Before(restart) {
			charged++
		}
		if other, dup := ids[c.ID]; dup {
			t.Errorf("retry of %s answered charge %s of key %s", key, c.ID, other)
		}
		ids[c.ID] = key
	}
	keys := len(res.acked) + len(res.unknown)
	if len(ids) != keys {
		t.Errorf("%d distinct charges for %d keys", len(ids), keys)
	}

	b := getBalance(t, base, testAdminKey, ws)
	if b.Used != int64(keys) || b.Held != 0 || b.Granted != 5000 {
		t.Errorf("%s balance %+v: want used %d (one credit per key), held 0, granted 5000", ws, b, keys)
	}
	entries := ledgerSinceGrant(t, base, ws)
	var sum int64
	captures := 0
	for i, e := range entries {
		sum += e.Amount
		if e.AvailableAfter != sum {
			t.Errorf("%s ledger entry %d (%s %+d): available_after %d, running sum %d", ws, i, e.Type, e.Amount, e.AvailableAfter, sum)
			break
		}
		if e.Type == "capture" {
			captures++
		}
	}
	if sum != b.Available {
		t.Errorf("%s: the ledger since the grant sums to %d, available is %d", ws, sum, b.Available)
	}
	if captures != keys {
		t.Errorf("%s: %d capture entries, want %d", ws, captures, keys)
	}
	t.Logf("%s: %d acknowledged, %d unanswered and retried (%d of them charged before the restart), %d ledger entries",
		ws, len(res.acked), len(res.unknown), charged, len(entries))
	return charged
}

func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	db := filepath.Join(dir, "credits.db")
	// At most 3,200 of a pro workspace's 5,000 credits: no 402.
	const workers, perWorker = 8, 400
	acks := []int{100, 400, 900, 300} // stop at different points

	var done []string // workspaces verified so far, with their used credits
	used := map[string]int64{}
	recheck := func(t *testing.T, base string) {
		for _, ws := range done {
			if b := getBalance(t, base, testAdminKey, ws); b.Used != used[ws] {
				t.Errorf("%s: used %d, was %d before this round", ws, b.Used, used[ws])
			}
		}
	}

	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("sigkill%d", round), func(t *testing.T) {
			ws := fmt.Sprintf("kill-%d", round)
			p := startProcEnv(t, bin, db, noRateLimit)
			recheck(t, p.url)
			callJSON(t, 201, "POST", p.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Load","plan":"pro"}`, nil)
			res := chargeLoad(t, p.url, ws, workers, perWorker, acks[round-1], func() {
				if err := p.cmd.Process.Kill(); err != nil {
					t.Errorf("kill: %v", err)
				}
			})
			<-p.exited
			if int(res.full.Load()) == workers {
				t.Errorf("the load finished before the kill")
			}
			if len(res.acked) == 0 {
				t.Fatal("nothing was acknowledged before the kill")
			}

			restart := time.Now()
			p = startProcEnv(t, bin, db, noRateLimit)
			verifyLoad(t, p.url, ws, res, restart)
			recheck(t, p.url)
			used[ws] = getBalance(t, p.url, testAdminKey, ws).Used
			done = append(done, ws)
			p.cmd.Process.Kill()
		})
	}

	t.Run("sigterm", func(t *testing.T) {
		ws, hws := "term", "term-hold"
		slowAI := startSlowAI(t, 1500*time.Millisecond)
		env := append([]string{noRateLimit}, slowAI.env...)
		p := startProcEnv(t, bin, db, env...)
		callJSON(t, 201, "POST", p.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Load","plan":"pro"}`, nil)
		callJSON(t, 201, "POST", p.url+"/v1/workspaces", testAdminKey, `{"id":"`+hws+`","name":"Holds","plan":"pro"}`, nil)
		var sent time.Time
		var holds []string
		var slow <-chan timedAnswer
		var probe *drainProbe
		res := chargeLoad(t, p.url, ws, workers, perWorker, acks[3], func() {
			// Just before SIGTERM: holds that expire within a second, and
			// a slow AI operation on its provider.
			for i := range 5 {
				var c chargeOut
				callJSON(t, 201, "POST", p.url+"/v1/workspaces/"+hws+"/charges", testAdminKey, `{"operation":"section_generation","hold_seconds":1}`, &c, "Idempotency-Key", fmt.Sprintf("short-hold-%d", i))
				holds = append(holds, c.ID)
			}
			slow = postAsync(p.url+"/v1/workspaces/"+hws+"/ai/content_rewrite", slowAIBody, "slow-ai")
			select {
			case <-slowAI.arrived:
			case <-time.After(5 * time.Second):
				t.Errorf("the AI operation did not reach its provider within 5 s")
			}
			sent = time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("SIGTERM: %v", err)
			}
			probe = startDrainProbe(p.url + "/v1/workspaces/" + hws + "/balance")
		})
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30 s after SIGTERM:\n%s", p.log)
		}
		took := time.Since(sent)
		probed := probe.stop()
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, p.log)
		}
		if log := p.log.String(); !strings.Contains(log, "msg=draining") || !strings.Contains(log, "msg=stopped") {
			t.Errorf("the log does not show a drain:\n%s", log)
		}
		if int(res.full.Load()) == workers {
			t.Errorf("the load finished before SIGTERM")
		}
		first := ""
		if len(res.errs) > 0 {
			first = res.errs[0]
		}
		t.Logf("exited %v after SIGTERM; then %d requests got 503, %d no answer (first: %s)", took.Round(time.Millisecond), res.got503, len(res.errs), first)

		// The operation in flight when SIGTERM came finished: 200, charged.
		var aiCharge string
		select {
		case a := <-slow:
			var body struct {
				Charge chargeOut `json:"charge"`
				Result struct {
					Text string `json:"text"`
				} `json:"result"`
			}
			if a.err != nil || a.status != http.StatusOK || json.Unmarshal(a.body, &body) != nil || body.Charge.Status != "captured" || body.Result.Text == "" {
				t.Errorf("the AI operation in flight at SIGTERM: %v", a.answer)
			} else if !a.at.After(sent) {
				t.Errorf("the AI operation answered before SIGTERM: nothing was in flight")
			} else {
				aiCharge = body.Charge.ID
				t.Logf("the AI operation in flight answered 200 %v after SIGTERM", a.at.Sub(sent).Round(time.Millisecond))
			}
		case <-time.After(10 * time.Second):
			t.Errorf("the AI operation in flight at SIGTERM never answered")
		}
		// What arrived while draining was refused whole, never cut.
		t.Logf("while draining: %s", probed)
		if probed.cut > 0 {
			t.Errorf("%d answers were cut off while draining: %s", probed.cut, probed.firstCut)
		}
		if probed.bad > 0 {
			t.Errorf("%d answers while draining were neither complete 2xx nor 503 unavailable problems: %s", probed.bad, probed.firstBad)
		}
		if probed.refused+probed.unavailable == 0 {
			t.Errorf("no request was refused while draining (%s)", probed)
		}

		restart := time.Now()
		p = startProcEnv(t, bin, db, env...)
		// A drain finishes what it started: a request that was charged
		// got its answer.
		if n := verifyLoad(t, p.url, ws, res, restart); n > 0 {
			t.Errorf("%d requests were charged during the drain but never answered", n)
		}
		recheck(t, p.url)

		// The short holds were held when the server stopped; the
		// restarted server expires them by itself, without a read.
		time.Sleep(2 * time.Second)
		if n := heldPastExpiry(t, db); n != 0 {
			t.Errorf("2 s after the restart, %d holds are past their expiry and still held", n)
		}
		for _, id := range holds {
			var c chargeOut
			callJSON(t, 200, "GET", p.url+"/v1/charges/"+id, testAdminKey, "", &c)
			if c.Status != "expired" {
				t.Errorf("hold %s (1 s, made before SIGTERM): %s after the restart, want expired", id, c.Status)
			}
		}
		if b := getBalance(t, p.url, testAdminKey, hws); b.Held != 0 || b.Used != 1 || b.Available != 4999 {
			t.Errorf("%s after the restart: %+v, want held 0, used 1 (the AI operation), available 4999", hws, b)
		}
		// Its retry answers the same, charged once.
		var again struct {
			Charge chargeOut `json:"charge"`
		}
		callJSON(t, 200, "POST", p.url+"/v1/workspaces/"+hws+"/ai/content_rewrite", testAdminKey, slowAIBody, &again, "Idempotency-Key", "slow-ai")
		if aiCharge != "" && again.Charge.ID != aiCharge {
			t.Errorf("the AI operation's retry: charge %s, want %s", again.Charge.ID, aiCharge)
		}
	})

	// After every kill and drain, the books still balance.
	t.Run("verify", func(t *testing.T) {
		out, err := exec.Command(bin, "verify", "--db", db).CombinedOutput()
		if err != nil {
			t.Fatalf("credits verify --db %s: %v\n%s", db, err, out)
		}
		t.Logf("%s", out)
	})
}

// slowAIBody is a content_rewrite request.
const slowAIBody = `{"prompt":"friendlier","text":"we sell shoes"}`

// slowAI is an OpenAI-compatible provider that takes its time.
type slowAI struct {
	env     []string      // the server's CREDITS_AI_* settings for it
	arrived chan struct{} // a request reached it
}

// startSlowAI serves chat completions after delay.
func startSlowAI(t *testing.T, delay time.Duration) *slowAI {
	t.Helper()
	a := &slowAI{arrived: make(chan struct{}, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not here", http.StatusNotFound)
			return
		}
		select {
		case a.arrived <- struct{}{}:
		default:
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"chatcmpl-slow","object":"chat.completion","created":1700000000,"model":"slow-text",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"We sell shoes, gladly."},"finish_reason":"stop"}]}`)
	}))
	t.Cleanup(srv.Close)
	a.env = []string{"CREDITS_AI_PROVIDER=openai", "CREDITS_AI_BASE_URL=" + srv.URL + "/v1", "CREDITS_AI_API_KEY=test-key",
		"CREDITS_AI_TEXT_MODEL=slow-text", "CREDITS_AI_IMAGE_MODEL=slow-image", "CREDITS_AI_TIMEOUT=10s"}
	return a
}

// timedAnswer is an answer and when it came.
type timedAnswer struct {
	answer
	at time.Time
}

// postAsync sends an admin POST with an Idempotency-Key and delivers its
// answer on the channel.
func postAsync(url, body, key string) <-chan timedAnswer {
	out := make(chan timedAnswer, 1)
	go func() {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			out <- timedAnswer{answer{err: err}, time.Now()}
			return
		}
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		a := send(&http.Client{Timeout: 20 * time.Second}, req)
		out <- timedAnswer{a, time.Now()}
	}()
	return out
}

// drainProbe sends GETs, on new connections and on one kept-alive
// connection, while a server drains, and sorts the answers.
type drainProbe struct {
	stopc chan struct{}
	done  chan drainStats
}

type drainStats struct {
	ok, unavailable, refused, cut, bad int
	firstCut, firstBad                 string
}

func (s drainStats) String() string {
	return fmt.Sprintf("%d complete 2xx, %d 503 unavailable, %d refused or closed without an answer, %d cut, %d other", s.ok, s.unavailable, s.refused, s.cut, s.bad)
}

func startDrainProbe(url string) *drainProbe {
	p := &drainProbe{stopc: make(chan struct{}), done: make(chan drainStats, 1)}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	kept := &http.Client{Timeout: 10 * time.Second}
	go func() {
		var st drainStats
		for i := 0; ; i++ {
			select {
			case <-p.stopc:
				p.done <- st
				return
			default:
			}
			c := fresh
			if i%2 == 1 {
				c = kept
			}
			st.add(c, url)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

// add sends one GET and sorts its answer: no answer at all (refused, or
// closed before a byte of the answer) is clean; an answer whose body breaks
// off is cut.
func (s *drainStats) add(c *http.Client, url string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := c.Do(req)
	if err != nil {
		s.refused++
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		s.cut++
		if s.firstCut == "" {
			s.firstCut = fmt.Sprintf("%d, then %v after %q", resp.StatusCode, err, b)
		}
	case resp.StatusCode < 300 && json.Valid(b):
		s.ok++
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Content-Type") == "application/problem+json" && strings.Contains(string(b), `"code":"unavailable"`):
		s.unavailable++
	default:
		s.bad++
		if s.firstBad == "" {
			s.firstBad = fmt.Sprintf("%d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

func (p *drainProbe) stop() drainStats {
	close(p.stopc)
	return <-p.done
}

// heldPastExpiry counts, in the SQLite file, the held charges whose expiry
// has passed.
func heldPastExpiry(t *testing.T, db string) int {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow(`SELECT COUNT(*) FROM charges WHERE status = 'held' AND expires_at <= ?`, time.Now().UnixMicro()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
