package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

func sampleAnswers() []ledger.ChargeResult {
	now := time.Date(2026, 11, 25, 12, 0, 0, 123000, time.UTC)
	member := "m1"
	ch := credits.Charge{ID: "ch_0000000000000000000000000x", WorkspaceID: "w1", Cycle: 2, Operation: "image_1k", Quantity: 1, Cost: 30,
		Status: credits.StatusHeld, MemberID: &member, Metadata: map[string]string{"page": "home"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	bal := credits.Balance{WorkspaceID: "w1", Plan: "free", MonthlyCredits: 250, Granted: 250, Available: 220, Held: 30,
		CycleStart: now, CycleEnd: now.AddDate(0, 1, 0)}
	refusal := &credits.Error{Code: credits.CodeInsufficientCredits, Message: "not enough",
		Insufficient: &credits.Insufficient{Balance: 2, Required: 30, Shortfall: 28, Plan: "free"}}
	return []ledger.ChargeResult{
		{Charge: &ch, Balance: &bal},
		{Err: refusal},
	}
}

// A stored answer reads back as it was given: a hold's in binary, a
// refusal's as JSON, and answers stored as JSON before migration 7 too.
func TestAnswerRoundTrip(t *testing.T) {
	for i, want := range sampleAnswers() {
		b, err := appendAnswer(nil, &want)
		if err != nil {
			t.Fatal(err)
		}
		if binary := want.Err == nil; binary != (b[0] == answerCharge) {
			t.Errorf("answer %d: stored as %q", i, b[:1])
		}
		got, err := decodeAnswer(b)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("answer %d:\n got %+v\nwant %+v", i, got, want)
		}
		legacy, _ := json.Marshal(want)
		if want.Charge != nil {
			c := *want.Charge
			c.Cycle = 0 // not in the JSON (nor in the API's answer)
			want.Charge = &c
		}
		if got, err := decodeAnswer(legacy); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("answer %d as JSON: %+v %v", i, got, err)
		}
		if id, err := answerChargeID(b); err != nil || (want.Charge != nil && id != want.Charge.ID) || (want.Charge == nil && id != "") {
			t.Errorf("answer %d names charge %q (%v)", i, id, err)
		}
	}
	hold, _ := appendAnswer(nil, &sampleAnswers()[0])
	asJSON, _ := json.Marshal(sampleAnswers()[0])
	t.Logf("a hold's answer: %d bytes, %d as JSON", len(hold), len(asJSON))
	for n := 1; n < len(hold); n++ {
		if _, err := decodeAnswer(hold[:n]); err == nil {
			t.Fatalf("an answer cut to %d of %d bytes decoded", n, len(hold))
		}
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	for _, a := range sampleAnswers() {
		b, _ := appendAnswer(nil, &a)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeAnswer(b)
		if err != nil || r.Charge == nil || r.Balance == nil || r.Err != nil {
			return
		}
		again, err := appendAnswer(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeAnswer(again); err != nil {
			t.Fatalf("re-encoding a decoded answer: %v", err)
		}
	})
}
