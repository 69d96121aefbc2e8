package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ack is a charge a client saw acknowledged, and when.
type ack struct {
	id string
	at time.Time
}

// TestBackupWhileServing backs up a SQLite file while a real server writes
// it under concurrent charges, then serves the copy: every charge
// acknowledged before the backup began is in it, and credits verify passes.
func TestBackupWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	db := filepath.Join(dir, "credits.db")
	backup := filepath.Join(dir, "backup.db")
	p := startProc(t, bin, db)
	const ws = "bk"
	callJSON(t, 201, "POST", p.url+"/v1/workspaces", testAdminKey, `{"id":"`+ws+`","name":"Backup","plan":"pro"}`, nil)

	var mu sync.Mutex
	acked := map[string]ack{} // key -> charge
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; i < 500; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("bk-w%d-%d", w, i)
				status, id, err := postCharge(client, p.url, ws, key)
				if err != nil || status != http.StatusCreated {
					t.Errorf("charge %s: %d %v", key, status, err)
					return
				}
				mu.Lock()
				acked[key] = ack{id, time.Now()}
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for deadline := time.Now().Add(10 * time.Second); count() < 300 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	mu.Lock()
	before := make(map[string]ack, len(acked))
	for k, a := range acked {
		before[k] = a
	}
	mu.Unlock()
	start := time.Now()
	out, err := exec.Command(bin, "backup", backup, "--db", db).CombinedOutput()
	end := time.Now()
	if err != nil || !strings.Contains(string(out), "backed up "+db+" to "+backup) {
		t.Fatalf("credits backup: %v\n%s", err, out)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	during := 0
	for _, a := range acked {
		if a.at.After(start) && a.at.Before(end) {
			during++
		}
	}
	t.Logf("backup took %v; %d charges acknowledged before it, %d during it, %d in all", end.Sub(start).Round(time.Millisecond), len(before), during, len(acked))
	if during == 0 {
		t.Errorf("no charge was acknowledged while the backup ran: the load was not concurrent")
	}

	// A second backup to the same file is refused; the copy is untouched.
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "backup", backup, "--db", db).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exists; refusing to overwrite") {
		t.Errorf("backup over an existing file: %v\n%s", err, out)
	}
	if fi2, err := os.Stat(backup); err != nil || fi2.Size() != fi.Size() || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the existing backup changed: %v", err)
	}

	// The copy passes verify and serves; what was acknowledged before the
	// backup began is in it.
	if out, err := exec.Command(bin, "verify", "--db", backup).CombinedOutput(); err != nil {
		t.Fatalf("credits verify on the backup: %v\n%s", err, out)
	} else {
		t.Logf("%s", out)
	}
	q := startProc(t, bin, backup)
	for key, a := range before {
		code, b := call(t, "GET", q.url+"/v1/charges/"+a.id, testAdminKey, "")
		if code != http.StatusOK || !strings.Contains(string(b), `"status":"captured"`) {
			t.Errorf("charge %s (key %s), acknowledged before the backup: %d %s", a.id, key, code, b)
		}
	}
	bal := getBalance(t, q.url, testAdminKey, ws)
	if bal.Used < int64(len(before)) || bal.Used > int64(len(acked)) {
		t.Errorf("the backup has %d credits used; %d charges were acknowledged before it, %d in all", bal.Used, len(before), len(acked))
	}
	callJSON(t, 201, "POST", q.url+"/v1/workspaces/"+ws+"/charges", testAdminKey, chargeBody, nil, "Idempotency-Key", "after-restore")

}

func TestBackupCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exists := writeFile(t, "exists.db", "x")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", []string{"backup"}, 2, "needs the FILE"},
		{"postgres", []string{"backup", filepath.Join(dir, "b.db"), "--db", "postgres://u:secret@h/db"}, 2, "pg_dump"},
		{"existing file", []string{"backup", exists, "--db", exists}, 1, "exists; refusing to overwrite"},
		{"missing database", []string{"backup", filepath.Join(dir, "b.db"), "--db", filepath.Join(dir, "none.db")}, 1, "no such file"},
		{"two files", []string{"backup", "a.db", "b.db"}, 2, "one FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tt.code, errOut, tt.want)
			}
			if strings.Contains(errOut, "secret") {
				t.Errorf("the message shows the password: %q", errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("backup made the database it was asked to copy")
	}
}
