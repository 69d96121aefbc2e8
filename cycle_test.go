package credits_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/credits-dev/credits"
)

func utc(y int, m time.Month, d, hh, mm, ss, ns int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, ns, time.UTC)
}

func TestAddMonths(t *testing.T) {
	jan31y24 := utc(2024, time.January, 31, 0, 0, 0, 0)
	aug31 := utc(2024, time.August, 31, 13, 45, 7, 123456789)
	mar31 := utc(2024, time.March, 31, 9, 0, 0, 0)
	jan15 := utc(2024, time.January, 15, 6, 30, 0, 0)
	feb29 := utc(2000, time.February, 29, 23, 59, 59, 999999999)

	// Fixed zones: no dependency on the tz database.
	est := time.FixedZone("EST", -5*3600)
	plus5 := time.FixedZone("+05", 5*3600)
	plus14 := time.FixedZone("+14", 14*3600)

	tests := []struct {
		name   string
		anchor time.Time
		n      int
		want   time.Time
	}{
		// Jan 31 anchors: the clamp applies per month, never accumulates.
		{"2024 jan31 +0", jan31y24, 0, jan31y24},
		{"2024 jan31 +1 leap feb", jan31y24, 1, utc(2024, time.February, 29, 0, 0, 0, 0)},
		{"2024 jan31 +2 back to 31", jan31y24, 2, utc(2024, time.March, 31, 0, 0, 0, 0)},
		{"2024 jan31 +3 apr30", jan31y24, 3, utc(2024, time.April, 30, 0, 0, 0, 0)},
		{"2024 jan31 +4 may31", jan31y24, 4, utc(2024, time.May, 31, 0, 0, 0, 0)},
		{"2025 jan31 +1 feb28", utc(2025, time.January, 31, 0, 0, 0, 0), 1, utc(2025, time.February, 28, 0, 0, 0, 0)},
		{"2025 jan31 +2 mar31", utc(2025, time.January, 31, 0, 0, 0, 0), 2, utc(2025, time.March, 31, 0, 0, 0, 0)},
		{"2100 not leap", utc(2100, time.January, 31, 0, 0, 0, 0), 1, utc(2100, time.February, 28, 0, 0, 0, 0)},
		{"2000 leap", utc(2000, time.January, 31, 0, 0, 0, 0), 1, utc(2000, time.February, 29, 0, 0, 0, 0)},
		{"1900 not leap", utc(1900, time.January, 31, 0, 0, 0, 0), 1, utc(1900, time.February, 28, 0, 0, 0, 0)},
		{"2024 jan30 +1", utc(2024, time.January, 30, 0, 0, 0, 0), 1, utc(2024, time.February, 29, 0, 0, 0, 0)},
		{"2024 jan29 +1", utc(2024, time.January, 29, 0, 0, 0, 0), 1, utc(2024, time.February, 29, 0, 0, 0, 0)},
		{"2023 jan29 +1", utc(2023, time.January, 29, 0, 0, 0, 0), 1, utc(2023, time.February, 28, 0, 0, 0, 0)},

		// Aug 31 over six months, time of day (to the nanosecond) kept.
		{"aug31 +1", aug31, 1, utc(2024, time.September, 30, 13, 45, 7, 123456789)},
		{"aug31 +2", aug31, 2, utc(2024, time.October, 31, 13, 45, 7, 123456789)},
		{"aug31 +3", aug31, 3, utc(2024, time.November, 30, 13, 45, 7, 123456789)},
		{"aug31 +4", aug31, 4, utc(2024, time.December, 31, 13, 45, 7, 123456789)},
		{"aug31 +5 new year", aug31, 5, utc(2025, time.January, 31, 13, 45, 7, 123456789)},
		{"aug31 +6 feb28", aug31, 6, utc(2025, time.February, 28, 13, 45, 7, 123456789)},

		// Negative n: months before the anchor.
		{"mar31 -1 leap feb", mar31, -1, utc(2024, time.February, 29, 9, 0, 0, 0)},
		{"mar31 -2 jan31", mar31, -2, utc(2024, time.January, 31, 9, 0, 0, 0)},
		{"mar31 -3 across year", mar31, -3, utc(2023, time.December, 31, 9, 0, 0, 0)},
		{"mar31 -4 nov30", mar31, -4, utc(2023, time.November, 30, 9, 0, 0, 0)},
		{"mar31 -13 feb28", mar31, -13, utc(2023, time.February, 28, 9, 0, 0, 0)},
		{"jan15 -1 across year", jan15, -1, utc(2023, time.December, 15, 6, 30, 0, 0)},
		{"jan15 -12", jan15, -12, utc(2023, time.January, 15, 6, 30, 0, 0)},
		{"jan15 -13", jan15, -13, utc(2022, time.December, 15, 6, 30, 0, 0)},
		{"jan15 -25", jan15, -25, utc(2021, time.December, 15, 6, 30, 0, 0)},
		{"jan15 -1200", jan15, -1200, utc(1924, time.January, 15, 6, 30, 0, 0)},

		// Whole years.
		{"jan31 +12", jan31y24, 12, utc(2025, time.January, 31, 0, 0, 0, 0)},
		{"jan31 +24", jan31y24, 24, utc(2026, time.January, 31, 0, 0, 0, 0)},
		{"jan31 +1200", jan31y24, 1200, utc(2124, time.January, 31, 0, 0, 0, 0)},
		{"feb29 +12 clamps", feb29, 12, utc(2001, time.February, 28, 23, 59, 59, 999999999)},
		{"feb29 +24 clamps", feb29, 24, utc(2002, time.February, 28, 23, 59, 59, 999999999)},
		{"feb29 +48 leap again", feb29, 48, utc(2004, time.February, 29, 23, 59, 59, 999999999)},
		{"feb29 +1200 2100 not leap", feb29, 1200, utc(2100, time.February, 28, 23, 59, 59, 999999999)},
		{"aug31 +1201", aug31, 1201, utc(2124, time.September, 30, 13, 45, 7, 123456789)},

		// Anchors in other zones are converted to UTC first.
		{"EST jan31 23:30 is feb1 UTC +0", time.Date(2024, time.January, 31, 23, 30, 0, 0, est), 0, utc(2024, time.February, 1, 4, 30, 0, 0)},
		{"EST jan31 23:30 is feb1 UTC +1", time.Date(2024, time.January, 31, 23, 30, 0, 0, est), 1, utc(2024, time.March, 1, 4, 30, 0, 0)},
		{"+05 mar1 01:00 is feb29 UTC +1", time.Date(2024, time.March, 1, 1, 0, 0, 0, plus5), 1, utc(2024, time.March, 29, 20, 0, 0, 0)},
		{"+05 mar1 01:00 is feb29 UTC +12", time.Date(2024, time.March, 1, 1, 0, 0, 0, plus5), 12, utc(2025, time.February, 28, 20, 0, 0, 0)},
		{"+14 feb1 05:00 is jan31 UTC +1", time.Date(2025, time.February, 1, 5, 0, 0, 0, plus14), 1, utc(2025, time.February, 28, 15, 0, 0, 0)},
		{"+14 feb1 05:00 is jan31 UTC -1", time.Date(2025, time.February, 1, 5, 0, 0, 0, plus14), -1, utc(2024, time.December, 31, 15, 0, 0, 0)},
		{"Local zone", time.Date(2024, time.May, 31, 12, 0, 0, 0, time.Local), 1, addMonthsRef(time.Date(2024, time.May, 31, 12, 0, 0, 0, time.Local).UTC(), 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := credits.AddMonths(tc.anchor, tc.n)
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("AddMonths(%v, %d) = %v (%v), want %v UTC", tc.anchor, tc.n, got, got.Location(), tc.want)
			}
			if cs := credits.CycleStart(tc.anchor, tc.n); !cs.Equal(got) || cs.Location() != time.UTC {
				t.Errorf("CycleStart(%v, %d) = %v, want %v", tc.anchor, tc.n, cs, got)
			}
		})
	}
}

// addMonthsRef is an independent reference: the anchor's UTC day clamped to
// the target month's length.
func addMonthsRef(a time.Time, n int) time.Time {
	a = a.UTC()
	first := time.Date(a.Year(), a.Month(), 1, a.Hour(), a.Minute(), a.Second(), a.Nanosecond(), time.UTC).AddDate(0, n, 0)
	last := time.Date(first.Year(), first.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	d := min(a.Day(), last)
	return first.AddDate(0, 0, d-1)
}

func TestAddMonthsMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 20000 {
		a := randomAnchor(r, 1, 31)
		n := r.IntN(2401) - 1200
		got, want := credits.AddMonths(a, n), addMonthsRef(a, n)
		if !got.Equal(want) {
			t.Fatalf("AddMonths(%v, %d) = %v, want %v", a, n, got, want)
		}
	}
}

// randomAnchor is a UTC time on a day from lo to hi (clamped to the month)
// between 1950 and 2100, at a random time of day to the nanosecond.
func randomAnchor(r *rand.Rand, lo, hi int) time.Time {
	y := 1950 + r.IntN(151)
	m := time.Month(1 + r.IntN(12))
	d := lo + r.IntN(hi-lo+1)
	d = min(d, time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day())
	return time.Date(y, m, d, r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), time.UTC)
}

func TestCycleAt(t *testing.T) {
	jan31 := utc(2024, time.January, 31, 10, 0, 0, 0)
	aug31 := utc(2024, time.August, 31, 0, 0, 0, 0)
	est := time.FixedZone("EST", -5*3600)

	tests := []struct {
		name   string
		anchor time.Time
		t      time.Time
		want   int
	}{
		{"at anchor", jan31, jan31, 0},
		{"1ns before anchor", jan31, jan31.Add(-time.Nanosecond), -1},
		{"1ns after anchor", jan31, jan31.Add(time.Nanosecond), 0},
		{"exactly feb29 start", jan31, utc(2024, time.February, 29, 10, 0, 0, 0), 1},
		{"1ns before feb29 start", jan31, utc(2024, time.February, 29, 9, 59, 59, 999999999), 0},
		{"feb29 earlier that day", jan31, utc(2024, time.February, 29, 0, 0, 0, 0), 0},
		{"mar1 still cycle 1", jan31, utc(2024, time.March, 1, 0, 0, 0, 0), 1},
		{"exactly mar31 start", jan31, utc(2024, time.March, 31, 10, 0, 0, 0), 2},
		{"1ns before mar31 start", jan31, utc(2024, time.March, 31, 10, 0, 0, 0).Add(-time.Nanosecond), 1},
		{"apr30 start", jan31, utc(2024, time.April, 30, 10, 0, 0, 0), 3},
		{"a year later", jan31, utc(2025, time.January, 31, 10, 0, 0, 0), 12},
		{"a year later minus 1ns", jan31, utc(2025, time.January, 31, 10, 0, 0, 0).Add(-time.Nanosecond), 11},
		{"feb 2025 (28) start", jan31, utc(2025, time.February, 28, 10, 0, 0, 0), 13},
		{"before anchor same month", jan31, utc(2024, time.January, 15, 0, 0, 0, 0), -1},
		{"exactly dec31 2023", jan31, utc(2023, time.December, 31, 10, 0, 0, 0), -1},
		{"1ns before dec31 2023", jan31, utc(2023, time.December, 31, 10, 0, 0, 0).Add(-time.Nanosecond), -2},
		{"nov30 2023", jan31, utc(2023, time.November, 30, 10, 0, 0, 0), -2},
		{"feb28 2023 start", jan31, utc(2023, time.February, 28, 10, 0, 0, 0), -11},
		{"a year before", jan31, utc(2023, time.January, 31, 10, 0, 0, 0), -12},
		{"a year before minus 1ns", jan31, utc(2023, time.January, 31, 10, 0, 0, 0).Add(-time.Nanosecond), -13},
		{"aug31 sep30 start", aug31, utc(2024, time.September, 30, 0, 0, 0, 0), 1},
		{"aug31 sep30 -1ns", aug31, utc(2024, time.September, 30, 0, 0, 0, 0).Add(-time.Nanosecond), 0},
		{"aug31 feb28 2025", aug31, utc(2025, time.February, 28, 0, 0, 0, 0), 6},
		{"aug31 mar30 2025", aug31, utc(2025, time.March, 30, 23, 0, 0, 0), 6},
		{"aug31 mar31 2025", aug31, utc(2025, time.March, 31, 0, 0, 0, 0), 7},
		// Zones: both are compared as instants.
		{"t in EST at feb29 start", jan31, time.Date(2024, time.February, 29, 5, 0, 0, 0, est), 1},
		{"t in EST 1ns before", jan31, time.Date(2024, time.February, 29, 4, 59, 59, 999999999, est), 0},
		{"anchor in EST", time.Date(2024, time.January, 31, 23, 30, 0, 0, est), utc(2024, time.February, 29, 12, 0, 0, 0), 0},
		{"anchor in EST next", time.Date(2024, time.January, 31, 23, 30, 0, 0, est), utc(2024, time.March, 1, 4, 30, 0, 0), 1},
		{"far future", jan31, utc(2124, time.January, 31, 10, 0, 0, 0), 1200},
		{"far past", jan31, utc(1924, time.January, 31, 10, 0, 0, 0), -1200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := credits.CycleAt(tc.anchor, tc.t); got != tc.want {
				t.Errorf("CycleAt(%v, %v) = %d, want %d", tc.anchor, tc.t, got, tc.want)
			}
		})
	}
}

func TestCycleAtProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(20240131, 42))
	const tenYears = 10 * 366 * 24 * time.Hour
	for i := range 50000 {
		a := randomAnchor(r, 28, 31)
		if i%3 == 0 {
			// Same instant, another zone.
			a = a.In(time.FixedZone("z", (r.IntN(27)-12)*3600))
		}
		tt := a.Add(time.Duration(r.Int64N(int64(2*tenYears)+1)) - tenYears)
		n := credits.CycleAt(a, tt)
		lo, hi := credits.CycleStart(a, n), credits.CycleStart(a, n+1)
		if lo.After(tt) || !hi.After(tt) {
			t.Fatalf("anchor %v t %v: CycleAt = %d, but cycle is [%v, %v)", a, tt, n, lo, hi)
		}
		if tt.Before(a) != (n < 0) {
			t.Fatalf("anchor %v t %v: CycleAt = %d, sign disagrees", a, tt, n)
		}

		// Boundaries: a cycle start belongs to its cycle, 1ns before to the
		// previous one.
		m := r.IntN(241) - 120
		s := credits.CycleStart(a, m)
		if got := credits.CycleAt(a, s); got != m {
			t.Fatalf("anchor %v: CycleAt(CycleStart(%d)) = %d", a, m, got)
		}
		if got := credits.CycleAt(a, s.Add(-time.Nanosecond)); got != m-1 {
			t.Fatalf("anchor %v: CycleAt(CycleStart(%d)-1ns) = %d, want %d", a, m, got, m-1)
		}
	}
}

func TestCycleBalanced(t *testing.T) {
	tests := []struct {
		name string
		c    credits.Cycle
		want bool
	}{
		{"zero", credits.Cycle{}, true},
		{"fresh grant", credits.Cycle{Granted: 250, Available: 250}, true},
		{"all parts", credits.Cycle{Granted: 1000, Available: 400, Held: 100, Used: 300, Expired: 200}, true},
		{"all used", credits.Cycle{Granted: 250, Used: 250}, true},
		{"sum short", credits.Cycle{Granted: 250, Available: 200, Used: 49}, false},
		{"sum over", credits.Cycle{Granted: 250, Available: 200, Used: 51}, false},
		{"negative available", credits.Cycle{Granted: 250, Available: -10, Used: 260}, false},
		{"negative held", credits.Cycle{Granted: 250, Available: 260, Held: -10}, false},
		{"negative used", credits.Cycle{Granted: 250, Available: 260, Used: -10}, false},
		{"negative expired", credits.Cycle{Granted: 250, Available: 260, Expired: -10}, false},
		{"negative granted", credits.Cycle{Granted: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Balanced(); got != tc.want {
				t.Errorf("%+v.Balanced() = %v, want %v", tc.c, got, tc.want)
			}
		})
	}
}
