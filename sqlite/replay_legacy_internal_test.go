package sqlite

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// A journal written before migration 7 holds its answers as JSON. Replayed
// into the new tables they are stored as they are, found by their key, and
// named by the right charge for credits verify.
func TestReplayLegacyJSONAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credits.db")
	now := time.Now().UTC().Truncate(time.Microsecond)
	cy := credits.Cycle{N: 0, Start: now, End: now.AddDate(0, 1, 0), Granted: 250, Available: 249, Held: 1}
	acc := ledger.Account{Workspace: credits.Workspace{ID: "w", Name: "w", Plan: "free", CycleAnchor: now, CreatedAt: now}, Cycle: cy}
	ch := credits.Charge{ID: "ch_legacy", WorkspaceID: "w", Operation: "content_rewrite", Quantity: 1, Cost: 1,
		Status: credits.StatusHeld, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	bal := credits.Balance{WorkspaceID: "w", Plan: "free", MonthlyCredits: 250, Granted: 250, Available: 249, Held: 1, CycleStart: cy.Start, CycleEnd: cy.End}
	answer, err := json.Marshal(ledger.ChargeResult{Charge: &ch, Balance: &bal})
	if err != nil {
		t.Fatal(err)
	}
	rec := &record{Batch: 1, Changes: &ledger.Changes{
		NewWorkspaces: []ledger.Account{acc},
		Cycles:        []ledger.CycleRow{{WorkspaceID: "w", Cycle: cy}},
		NewCharges:    []credits.Charge{ch},
		Entries: []credits.Entry{
			{Seq: 1, WorkspaceID: "w", At: now, Type: "grant", Amount: 250, AvailableAfter: 250},
			{Seq: 2, WorkspaceID: "w", At: now, Type: "hold", Amount: -1, AvailableAfter: 249, ChargeID: ch.ID, Operation: ch.Operation},
		},
		Idempotency: []ledger.IdemRecord{{WorkspaceID: "w", Key: "k", Fingerprint: "f", CreatedAt: now}},
	}, Results: [][]byte{answer}}
	payload := appendRecord(nil, rec)
	frame := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(payload, crcTable))
	frame = append(frame, payload...)
	if err := os.MkdirAll(journalDir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(journalDir(path), segmentName(1)), frame, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stored []byte
	if err := s.w.QueryRowContext(ctx, `SELECT answer FROM idempotency WHERE key = 'k'`).Scan(&stored); err != nil || stored[0] != '{' {
		t.Fatalf("stored answer %q (%v), want the journal's JSON", stored, err)
	}
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	found, err := tx.Idempotency(ctx, []ledger.IdemKey{{WorkspaceID: "w", Key: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	got := found[ledger.IdemKey{WorkspaceID: "w", Key: "k"}].Result
	if got.Charge == nil || got.Charge.ID != ch.ID || got.Balance == nil || *got.Balance != bal {
		t.Fatalf("the key's answer after replay: %+v", got)
	}
	if es, err := s.Entries(ctx, "w", 0, 10); err != nil || len(es) != 2 || es[0].Seq != 2 || es[1].Seq != 1 {
		t.Fatalf("ledger after replay: %+v %v", es, err)
	}
	if err := ledger.Check(ctx, s); err != nil {
		t.Fatal(err)
	}
}
