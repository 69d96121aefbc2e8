package client

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// chargeSeeds are answers as the server writes them, and ways an answer
// may differ from that.
var chargeSeeds = []string{
	`{"id":"ch_1","workspace_id":"acme","operation":"content_rewrite","quantity":1,"cost":1,"status":"held","member_id":null,"metadata":{},"created_at":"2025-01-15T09:30:00.123456789Z","expires_at":"2025-01-15T09:40:00Z","balance":{"workspace_id":"acme","plan":"pro","monthly_credits":5000,"granted":5000,"available":4999,"held":1,"used":0,"cycle_start":"2025-01-01T00:00:00Z","cycle_end":"2025-02-01T00:00:00Z"}}` + "\n",
	`{"id":"ch_1","member_id":"m","metadata":{"b":"2","a":"1"},"created_at":"2025-01-15T09:30:00+05:30"}`,
	` { "id" : "x" , "balance" : null , "metadata" : null } `,
	`{}`, `null`, `[]`, `{"id":1}`, `{"quantity":1.5}`, `{"quantity":1e3}`, `{"quantity":01}`, `{"quantity":-0}`,
	`{"quantity":9223372036854775808}`, `{"quantity":-9223372036854775808}`, `{"ID":"upper"}`, `{"Id":"x","id":"y"}`,
	`{"id":"a","id":"b"}`, `{"metadata":{"k":"1","k":"2"}}`, `{"metadata":{"k":null}}`, `{"id":"\u00e9\n"}`,
	"{\"id\":\"\xff\"}", `{"created_at":"2025-13-01T00:00:00Z"}`, `{"created_at":null}`, `{"unknown":1}`,
	`{"balance":{"held":1,"held":2}}`, `{"balance":{"Plan":"x"}}`, `{"id":"x"} {}`, `{"id":"x"`, `{"id":"x",}`,
	`{"cycle":3}`, `{"Cycle":3}`, `{"balance":{}}`, `{"status":"captured","cost":-5}`,
}

// checkCharge asserts decodeCharge gives what json.Unmarshal gives.
func checkCharge(t *testing.T, data []byte) {
	t.Helper()
	var want, got Charge
	wantErr := json.Unmarshal(data, &want)
	gotErr := decodeCharge(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: json.Unmarshal: %v, decodeCharge: %v", data, wantErr, gotErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\ndecodeCharge %+v\njson.Unmarshal %+v", data, got, want)
	}
}

func TestDecodeChargeMatchesUnmarshal(t *testing.T) {
	for _, s := range chargeSeeds {
		checkCharge(t, []byte(s))
	}
	// The server's answer takes the fast path.
	var c Charge
	if !fastCharge([]byte(chargeSeeds[0]), &c) || c.Balance == nil || c.Balance.Available != 4999 || c.Metadata == nil {
		t.Fatalf("the server's answer did not decode plainly: %+v", c)
	}
}

func FuzzDecodeCharge(f *testing.F) {
	for _, s := range chargeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkCharge(t, data) })
}

func BenchmarkDecodeCharge(b *testing.B) {
	m := "member"
	at := time.Date(2025, 1, 15, 9, 30, 0, 123456789, time.UTC)
	data, _ := json.Marshal(credits.ChargeView{
		Charge:  credits.Charge{ID: "ch_" + strings.Repeat("x", 26), WorkspaceID: "acme", Operation: "content_rewrite", Quantity: 1, Cost: 1, Status: "held", MemberID: &m, Metadata: map[string]string{}, CreatedAt: at, ExpiresAt: at},
		Balance: &credits.Balance{WorkspaceID: "acme", Plan: "pro", MonthlyCredits: 5000, Granted: 5000, Available: 4999, Held: 1, CycleStart: at, CycleEnd: at},
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Charge
			_ = json.Unmarshal(data, &c)
		}
	})
	b.Run("decodeCharge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Charge
			_ = decodeCharge(data, &c)
		}
	})
}
