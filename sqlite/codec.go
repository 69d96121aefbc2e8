package sqlite

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/ledger"
)

// A journal record is one committed batch: its number and the changes it
// made, with the ledger entries' sequence numbers already assigned, so
// replaying it writes exactly the rows the batch wrote. The encoding is a
// flat run of varints and length-prefixed strings in a fixed order; the
// record's version byte lets a later binary read an older journal.

const recordVersion = 1

// record is one batch as the journal holds it.
type record struct {
	Batch   uint64
	Changes *ledger.Changes
	// Results holds each idempotency record's answer (appendAnswer), in
	// the order of Changes.Idempotency: the table stores those bytes, so
	// it is encoded once, on the writer, and not again when materialized.
	Results [][]byte
}

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) time(t time.Time) {
	e.int(micros(t))
}
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) bytes(s []byte) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) optStr(p *string) {
	if p == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.str(*p)
}

func (e *encoder) account(a *ledger.Account) {
	w := &a.Workspace
	e.str(w.ID)
	e.str(w.Name)
	e.str(w.Plan)
	e.optStr(w.PendingPlan)
	e.time(w.CycleAnchor)
	e.time(w.CreatedAt)
	e.time(a.NextExpiry)
	e.cycle(&a.Cycle)
}

func (e *encoder) cycle(c *credits.Cycle) {
	e.int(int64(c.N))
	e.time(c.Start)
	e.time(c.End)
	e.int(c.Granted)
	e.int(c.Available)
	e.int(c.Held)
	e.int(c.Used)
	e.int(c.Expired)
}

func (e *encoder) charge(c *credits.Charge) {
	e.str(c.ID)
	e.str(c.WorkspaceID)
	e.int(int64(c.Cycle))
	e.str(c.Operation)
	e.int(c.Quantity)
	e.int(c.Cost)
	e.str(c.Status)
	e.optStr(c.MemberID)
	e.uint(uint64(len(c.Metadata)))
	keys := make([]string, 0, len(c.Metadata))
	for k := range c.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.str(k)
		e.str(c.Metadata[k])
	}
	e.time(c.CreatedAt)
	e.time(c.ExpiresAt)
	e.time(c.FinalizedAt)
}

func (e *encoder) entry(x *credits.Entry) {
	e.int(x.Seq)
	e.str(x.WorkspaceID)
	e.int(int64(x.Cycle))
	e.time(x.At)
	e.str(x.Type)
	e.int(x.Amount)
	e.int(x.AvailableAfter)
	e.str(x.ChargeID)
	e.str(x.Operation)
	e.str(x.MemberID)
	e.str(x.Reason)
}

// appendRecord encodes r onto b.
func appendRecord(b []byte, r *record) []byte {
	e := encoder{b: b}
	c := r.Changes
	e.b = append(e.b, recordVersion)
	e.uint(r.Batch)
	e.uint(uint64(len(c.NewWorkspaces)))
	for i := range c.NewWorkspaces {
		e.account(&c.NewWorkspaces[i])
	}
	e.uint(uint64(len(c.Accounts)))
	for i := range c.Accounts {
		e.account(&c.Accounts[i])
	}
	e.uint(uint64(len(c.Cycles)))
	for i := range c.Cycles {
		e.str(c.Cycles[i].WorkspaceID)
		e.cycle(&c.Cycles[i].Cycle)
	}
	e.uint(uint64(len(c.NewCharges)))
	for i := range c.NewCharges {
		e.charge(&c.NewCharges[i])
	}
	e.uint(uint64(len(c.Charges)))
	for i := range c.Charges {
		e.charge(&c.Charges[i])
	}
	e.uint(uint64(len(c.Entries)))
	for i := range c.Entries {
		e.entry(&c.Entries[i])
	}
	e.uint(uint64(len(c.Idempotency)))
	for i := range c.Idempotency {
		k := &c.Idempotency[i]
		e.str(k.WorkspaceID)
		e.str(k.Key)
		e.str(k.Fingerprint)
		e.time(k.CreatedAt)
		e.bytes(r.Results[i])
	}
	return e.b
}

var errShortRecord = errors.New("journal record is cut short")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) time() time.Time { return fromMicros(d.int()) }

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShortRecord
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) optStr() *string {
	if d.err != nil {
		return nil
	}
	if len(d.b) == 0 {
		d.err = errShortRecord
		return nil
	}
	flag := d.b[0]
	d.b = d.b[1:]
	if flag == 0 {
		return nil
	}
	s := d.str()
	return &s
}

// count reads a length and checks it against what is left, so a corrupt
// record cannot make the decoder allocate without bound.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err = errShortRecord
		return 0
	}
	return int(n)
}

func (d *decoder) account() ledger.Account {
	var a ledger.Account
	w := &a.Workspace
	w.ID = d.str()
	w.Name = d.str()
	w.Plan = d.str()
	w.PendingPlan = d.optStr()
	w.CycleAnchor = d.time()
	w.CreatedAt = d.time()
	a.NextExpiry = d.time()
	a.Cycle = d.cycle()
	return a
}

func (d *decoder) cycle() credits.Cycle {
	var c credits.Cycle
	c.N = int(d.int())
	c.Start = d.time()
	c.End = d.time()
	c.Granted = d.int()
	c.Available = d.int()
	c.Held = d.int()
	c.Used = d.int()
	c.Expired = d.int()
	return c
}

func (d *decoder) charge() credits.Charge {
	var c credits.Charge
	c.ID = d.str()
	c.WorkspaceID = d.str()
	c.Cycle = int(d.int())
	c.Operation = d.str()
	c.Quantity = d.int()
	c.Cost = d.int()
	c.Status = d.str()
	c.MemberID = d.optStr()
	if n := d.count(); n > 0 {
		c.Metadata = make(map[string]string, n)
		for range n {
			k := d.str()
			c.Metadata[k] = d.str()
		}
	}
	c.CreatedAt = d.time()
	c.ExpiresAt = d.time()
	c.FinalizedAt = d.time()
	return c
}

func (d *decoder) entry() credits.Entry {
	var x credits.Entry
	x.Seq = d.int()
	x.ID = entryID(x.Seq)
	x.WorkspaceID = d.str()
	x.Cycle = int(d.int())
	x.At = d.time()
	x.Type = d.str()
	x.Amount = d.int()
	x.AvailableAfter = d.int()
	x.ChargeID = d.str()
	x.Operation = d.str()
	x.MemberID = d.str()
	x.Reason = d.str()
	return x
}

// decodeRecord is appendRecord's inverse.
func decodeRecord(b []byte) (*record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("journal record: unknown version")
	}
	d := decoder{b: b[1:]}
	r := &record{Changes: &ledger.Changes{}}
	c := r.Changes
	r.Batch = d.uint()
	for n := d.count(); n > 0; n-- {
		c.NewWorkspaces = append(c.NewWorkspaces, d.account())
	}
	for n := d.count(); n > 0; n-- {
		c.Accounts = append(c.Accounts, d.account())
	}
	for n := d.count(); n > 0; n-- {
		ws := d.str()
		c.Cycles = append(c.Cycles, ledger.CycleRow{WorkspaceID: ws, Cycle: d.cycle()})
	}
	for n := d.count(); n > 0; n-- {
		c.NewCharges = append(c.NewCharges, d.charge())
	}
	for n := d.count(); n > 0; n-- {
		c.Charges = append(c.Charges, d.charge())
	}
	for n := d.count(); n > 0; n-- {
		c.Entries = append(c.Entries, d.entry())
	}
	for n := d.count(); n > 0; n-- {
		k := ledger.IdemRecord{WorkspaceID: d.str(), Key: d.str(), Fingerprint: d.str(), CreatedAt: d.time()}
		c.Idempotency = append(c.Idempotency, k)
		r.Results = append(r.Results, d.bytes())
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("journal record: %d bytes left over", len(d.b))
	}
	return r, nil
}

// An idempotency record's stored answer. A hold's (a charge and the
// balance after it: almost every one) is binary, answerCharge then the
// charge and the balance, about a quarter of its JSON: the answer is most
// of an idempotency row, and a smaller row is fewer pages to write. Any
// other answer (a refusal) is JSON, as every answer was before migration 7:
// JSON starts with '{', never with answerCharge.
const answerCharge = 1

// answerBytes is room for a typical hold's answer.
const answerBytes = 160

func appendAnswer(b []byte, r *ledger.ChargeResult) ([]byte, error) {
	if r.Charge == nil || r.Balance == nil || r.Err != nil {
		j, err := json.Marshal(r)
		return append(b, j...), err
	}
	e := encoder{b: append(b, answerCharge)}
	e.charge(r.Charge)
	x := r.Balance
	e.str(x.WorkspaceID)
	e.str(x.Plan)
	e.int(x.MonthlyCredits)
	e.int(x.Granted)
	e.int(x.Available)
	e.int(x.Held)
	e.int(x.Used)
	e.time(x.CycleStart)
	e.time(x.CycleEnd)
	return e.b, nil
}

// decodeAnswer is appendAnswer's inverse.
func decodeAnswer(b []byte) (ledger.ChargeResult, error) {
	var r ledger.ChargeResult
	if len(b) == 0 || b[0] != answerCharge {
		return r, json.Unmarshal(b, &r)
	}
	d := decoder{b: b[1:]}
	c := d.charge()
	x := credits.Balance{WorkspaceID: d.str(), Plan: d.str(), MonthlyCredits: d.int(), Granted: d.int(),
		Available: d.int(), Held: d.int(), Used: d.int(), CycleStart: d.time(), CycleEnd: d.time()}
	if d.err != nil {
		return r, fmt.Errorf("stored answer: %w", d.err)
	}
	if len(d.b) != 0 {
		return r, fmt.Errorf("stored answer: %d bytes left over", len(d.b))
	}
	r.Charge, r.Balance = &c, &x
	return r, nil
}

// answerChargeID is the id of the charge an answer holds, if any.
func answerChargeID(b []byte) (string, error) {
	if len(b) > 0 && b[0] == answerCharge {
		d := decoder{b: b[1:]}
		id := d.str()
		return id, d.err
	}
	r, err := decodeAnswer(b)
	if err != nil || r.Charge == nil {
		return "", err
	}
	return r.Charge.ID, nil
}

func entryID(seq int64) string { return "le_" + strconv.FormatInt(seq, 10) }
