package credits_test

import (
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

// fuzzSpan keeps fuzzed instants within ±5,000 years of 2000, where the
// calendar arithmetic has to be right (time.Time itself goes further, but
// no billing anchor does).
const fuzzSpan = 5000 * 366 * 24 * 3600

var y2k = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func fuzzTime(secs int64, nanos uint32, zone int8) time.Time {
	secs = y2k + secs%fuzzSpan
	t := time.Unix(secs, int64(nanos%1_000_000_000))
	// Any zone: the arithmetic is in UTC whatever the input's zone.
	return t.In(time.FixedZone("z", int(zone%15)*3600))
}

// FuzzCycleAt checks the cycle arithmetic on any anchor and instant:
// CycleStart(a, n) <= t < CycleStart(a, n+1) for n = CycleAt(a, t); cycle
// starts increase and keep the anchor's time of day in UTC; a cycle's start
// belongs to it and the nanosecond before to the one before.
func FuzzCycleAt(f *testing.F) {
	for _, s := range []struct {
		a, t   int64
		an, tn uint32
		az, tz int8
	}{
		{0, 0, 0, 0, 0, 0},
		{30 * 86400, 59 * 86400, 0, 0, 0, 0},               // Jan 31 anchor, Feb 29 2000
		{30*86400 + 1, 400 * 86400, 999_999_999, 1, 3, -5}, // nanoseconds, zones
		{-86400, 86400 * 365 * 30, 0, 0, 14, -14},
		{fuzzSpan - 1, -(fuzzSpan - 1), 0, 0, 0, 0},
		{59*86400 + 23*3600 + 59*60 + 59, 0, 500, 0, 0, 0}, // Feb 29 23:59:59
	} {
		f.Add(s.a, s.an, s.az, s.t, s.tn, s.tz)
	}
	f.Fuzz(func(t *testing.T, as int64, an uint32, az int8, ts int64, tn uint32, tz int8) {
		a, tt := fuzzTime(as, an, az), fuzzTime(ts, tn, tz)
		n := credits.CycleAt(a, tt)
		lo, hi := credits.CycleStart(a, n), credits.CycleStart(a, n+1)
		if lo.After(tt) || !hi.After(tt) {
			t.Fatalf("anchor %v, t %v: CycleAt = %d, but that cycle is [%v, %v)", a, tt, n, lo, hi)
		}
		if tt.Before(a) != (n < 0) {
			t.Fatalf("anchor %v, t %v: CycleAt = %d: the sign disagrees", a, tt, n)
		}
		au := a.UTC()
		for _, c := range []time.Time{lo, hi} {
			if c.Location() != time.UTC || c.Hour() != au.Hour() || c.Minute() != au.Minute() || c.Second() != au.Second() || c.Nanosecond() != au.Nanosecond() {
				t.Fatalf("anchor %v: cycle start %v does not keep the anchor's UTC time of day", a, c)
			}
			if c.Day() > au.Day() {
				t.Fatalf("anchor %v: cycle start %v is past the anchor's day", a, c)
			}
		}
		if got := credits.CycleAt(a, lo); got != n {
			t.Fatalf("anchor %v: CycleAt(CycleStart(%d) = %v) = %d", a, n, lo, got)
		}
		if got := credits.CycleAt(a, lo.Add(-time.Nanosecond)); got != n-1 {
			t.Fatalf("anchor %v: CycleAt(CycleStart(%d) - 1ns) = %d, want %d", a, n, got, n-1)
		}
		if n == 0 && !lo.Equal(a) {
			t.Fatalf("anchor %v: cycle 0 starts at %v", a, lo)
		}
	})
}
