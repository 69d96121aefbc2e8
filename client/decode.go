package client

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/credits-dev/credits"
)

// A charge is the answer of every hold, capture and release: the client's
// hot path. decodeCharge reads it without reflection when it is written
// plainly (as the server writes it: known keys once each, strings without
// escapes, integers, RFC 3339 times), which is the same result
// json.Unmarshal gives (checked by FuzzDecodeCharge). Anything else goes to
// json.Unmarshal, errors included.
func decodeCharge(data []byte, out *Charge) error {
	if fastCharge(data, out) {
		return nil
	}
	*out = Charge{}
	return json.Unmarshal(data, out)
}

// unmarshal decodes an answer into out.
func unmarshal(data []byte, out any) error {
	if c, ok := out.(*Charge); ok {
		return decodeCharge(data, c)
	}
	return json.Unmarshal(data, out)
}

// scan is a cursor over a plainly written JSON object.
type scan struct {
	b  []byte
	i  int
	ok bool
}

func (s *scan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c (after whitespace), or fails.
func (s *scan) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	s.ok = false
	return false
}

// peek reports whether the next byte (after whitespace) is c.
func (s *scan) peek(c byte) bool {
	s.space()
	return s.i < len(s.b) && s.b[s.i] == c
}

// raw returns a string's bytes without its quotes: only strings without
// escapes and of valid UTF-8 (which Unmarshal takes as they are).
func (s *scan) raw() []byte {
	if !s.byte('"') {
		return nil
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !utf8.Valid(v) {
				s.ok = false
			}
			return v
		case c == '\\' || c < 0x20:
			s.ok = false
			return nil
		}
		s.i++
	}
	s.ok = false
	return nil
}

func (s *scan) str() string { return string(s.raw()) }

func (s *scan) null() bool {
	s.space()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// int reads an integer written as JSON writes one (no fraction, exponent
// or leading zero).
func (s *scan) int() int64 {
	s.space()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || (n > 1 && s.b[digits] == '0') || (s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E')) {
		s.ok = false
		return 0
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err != nil {
		s.ok = false
	}
	return v
}

// time reads a time as time.Time.UnmarshalJSON does.
func (s *scan) time() time.Time {
	s.space()
	start := s.i
	s.raw()
	var t time.Time
	if !s.ok || t.UnmarshalJSON(s.b[start:s.i]) != nil {
		s.ok = false
	}
	return t
}

// object calls field for each key of an object, with the cursor on its
// value; field reports false to give up.
func (s *scan) object(field func(key []byte) bool) {
	if !s.byte('{') {
		return
	}
	if s.peek('}') {
		s.i++
		return
	}
	for s.ok {
		key := s.raw()
		if !s.ok || !s.byte(':') || !field(key) {
			s.ok = false
			return
		}
		if s.peek(',') {
			s.i++
			continue
		}
		s.byte('}')
		return
	}
}

// fieldSet records which fields of an object were read: once reports
// whether a field's bit is new, so a repeated key sends the answer to
// json.Unmarshal instead.
type fieldSet uint32

func (f *fieldSet) once(bit uint32) bool {
	if uint32(*f)&bit != 0 {
		return false
	}
	*f |= fieldSet(bit)
	return true
}

func fastCharge(data []byte, out *Charge) bool {
	s := &scan{b: data, ok: true}
	c := &out.Charge
	var seen fieldSet
	once := seen.once
	s.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			c.ID = s.str()
			return once(1 << 0)
		case "workspace_id":
			c.WorkspaceID = s.str()
			return once(1 << 1)
		case "operation":
			c.Operation = s.str()
			return once(1 << 2)
		case "quantity":
			c.Quantity = s.int()
			return once(1 << 3)
		case "cost":
			c.Cost = s.int()
			return once(1 << 4)
		case "status":
			c.Status = s.str()
			return once(1 << 5)
		case "member_id":
			if !s.null() {
				m := s.str()
				c.MemberID = &m
			}
			return once(1 << 6)
		case "metadata":
			if !s.null() {
				c.Metadata = map[string]string{}
				s.object(func(k []byte) bool {
					if _, dup := c.Metadata[string(k)]; dup {
						return false
					}
					c.Metadata[string(k)] = s.str()
					return true
				})
			}
			return once(1 << 7)
		case "created_at":
			c.CreatedAt = s.time()
			return once(1 << 8)
		case "expires_at":
			c.ExpiresAt = s.time()
			return once(1 << 9)
		case "balance":
			if !s.null() {
				out.Balance = &credits.Balance{}
				fastBalance(s, out.Balance)
			}
			return once(1 << 10)
		}
		return false // a key Unmarshal may match otherwise (case, other fields)
	})
	if !s.ok {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

func fastBalance(s *scan, b *credits.Balance) {
	var seen fieldSet
	once := seen.once
	s.object(func(key []byte) bool {
		switch string(key) {
		case "workspace_id":
			b.WorkspaceID = s.str()
			return once(1 << 0)
		case "plan":
			b.Plan = s.str()
			return once(1 << 1)
		case "monthly_credits":
			b.MonthlyCredits = s.int()
			return once(1 << 2)
		case "granted":
			b.Granted = s.int()
			return once(1 << 3)
		case "available":
			b.Available = s.int()
			return once(1 << 4)
		case "held":
			b.Held = s.int()
			return once(1 << 5)
		case "used":
			b.Used = s.int()
			return once(1 << 6)
		case "cycle_start":
			b.CycleStart = s.time()
			return once(1 << 7)
		case "cycle_end":
			b.CycleEnd = s.time()
			return once(1 << 8)
		}
		return false
	})
}
