package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

func sampleChargeView() credits.ChargeView {
	at := time.Date(2025, 1, 15, 9, 30, 0, 123456789, time.UTC)
	m := "member-1"
	return credits.ChargeView{
		Charge: credits.Charge{ID: "ch_01", WorkspaceID: "acme", Operation: "content_rewrite", Quantity: 3, Cost: 3,
			Status: credits.StatusHeld, MemberID: &m, Metadata: map[string]string{"page": "home", "a": "b"},
			CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Cycle: 4, FinalizedAt: at},
		Balance: &credits.Balance{WorkspaceID: "acme", Plan: "pro", MonthlyCredits: 5000, Granted: 5000,
			Available: 4997, Held: 3, CycleStart: at.AddDate(0, 0, -14), CycleEnd: at.AddDate(0, 1, -14)},
	}
}

// checkChargeView asserts that writeCharge answers the bytes writeJSON
// (encoding/json) would.
func checkChargeView(t *testing.T, v credits.ChargeView) {
	t.Helper()
	want := httptest.NewRecorder()
	writeJSON(want, 201, v)
	got := httptest.NewRecorder()
	writeCharge(got, 201, &v)
	if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
		t.Fatalf("writeCharge wrote\n%s\nencoding/json writes\n%s", got.Body.Bytes(), want.Body.Bytes())
	}
	if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") ||
		got.Header().Get("Cache-Control") != want.Header().Get("Cache-Control") {
		t.Fatalf("writeCharge answered %d %v, encoding/json %d %v", got.Code, got.Header(), want.Code, want.Header())
	}
}

func TestAppendChargeViewMatchesEncodingJSON(t *testing.T) {
	v := sampleChargeView()
	checkChargeView(t, v)

	v.MemberID, v.Metadata, v.Balance = nil, nil, nil
	checkChargeView(t, v)

	v = sampleChargeView()
	v.Metadata = map[string]string{}
	v.ID = `<script>"quoted" & \escaped` + "\u2028\x00\xff é"
	v.Metadata["é<>&"] = "\t\n"
	checkChargeView(t, v)

	v = sampleChargeView()
	v.CreatedAt = time.Date(2025, 3, 1, 0, 0, 0, 0, time.FixedZone("x", 5*3600+30*60))
	v.ExpiresAt = time.Date(2025, 3, 1, 0, 0, 0, 1000, time.FixedZone("y", -(3*3600+17)))
	v.Balance.CycleStart = time.Time{}
	checkChargeView(t, v)

	// Times encoding/json cannot write: the same (empty) answer.
	v.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	checkChargeView(t, v)
	v.ExpiresAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("z", 24*3600))
	checkChargeView(t, v)
	v.ExpiresAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	checkChargeView(t, v)
}

func FuzzAppendChargeView(f *testing.F) {
	f.Add("ch_1", "acme", "content_rewrite", "m", "k", "v", int64(1), int64(1_700_000_000_123456789), 0)
	f.Add("<>&", "\xff", "\u2028", "\"", "\\", "\x01", int64(-5), int64(-1<<62), 3600)
	f.Fuzz(func(t *testing.T, id, ws, op, member, key, val string, n, unixNano int64, offset int) {
		at := time.Unix(0, unixNano).In(time.FixedZone("f", offset%(48*3600)))
		v := credits.ChargeView{
			Charge: credits.Charge{ID: id, WorkspaceID: ws, Operation: op, Quantity: n, Cost: -n, Status: val,
				MemberID: &member, Metadata: map[string]string{key: val, val: key}, CreatedAt: at, ExpiresAt: at.Add(time.Duration(n))},
			Balance: &credits.Balance{WorkspaceID: ws, Plan: key, MonthlyCredits: n, Granted: n, Available: n, Held: n, Used: n, CycleStart: at, CycleEnd: at},
		}
		checkChargeView(t, v)
	})
}

func BenchmarkWriteCharge(b *testing.B) {
	v := sampleChargeView()
	w := discardWriter{header: http.Header{}}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeJSON(w, 201, v)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeCharge(w, 201, &v)
		}
	})
}

type discardWriter struct{ header http.Header }

func (w discardWriter) Header() http.Header       { return w.header }
func (discardWriter) WriteHeader(int)             {}
func (discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
