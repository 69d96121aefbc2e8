package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDITS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CREDITS_ADMIN_KEY="+testAdminKey)
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
			p := startProc(t, bin, db)
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
			p = startProc(t, bin, db)
			verifyLoad(t, p.url, ws, res, restart)
			recheck(t, p.url)
			used[ws] = getBalance(t, p.url, testAdminKey, ws).Used
			done = append(done, ws)
			p.cmd.Process.Kill()
		})
	}

	t.Run("sigterm", func(t *testing.T) {
		ws := "term"
		p := startProc(t, bin, db)
		callJSON(t, 201, "POST", p.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Load","plan":"pro"}`, nil)
		var sent time.Time
		res := chargeLoad(t, p.url, ws, workers, perWorker, acks[3], func() {
			sent = time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("SIGTERM: %v", err)
			}
		})
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30 s after SIGTERM:\n%s", p.log)
		}
		took := time.Since(sent)
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

		restart := time.Now()
		p = startProc(t, bin, db)
		// A drain finishes what it started: a request that was charged
		// got its answer.
		if n := verifyLoad(t, p.url, ws, res, restart); n > 0 {
			t.Errorf("%d requests were charged during the drain but never answered", n)
		}
		recheck(t, p.url)
	})
}
