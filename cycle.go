package credits

import "time"

// AddMonths returns t moved n calendar months, keeping the time of day in UTC.
// A day past the target month's end is clamped to its last day, so an anchor
// on Jan 31 gives Feb 28 (29 in leap years), then Mar 31.
func AddMonths(t time.Time, n int) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	// Month arithmetic on a zero-based month index avoids time.Date's
	// normalisation, which would roll Feb 31 into March.
	mi := int(m) - 1 + n
	y += floorDiv(mi, 12)
	mi = floorMod(mi, 12)
	month := time.Month(mi + 1)
	if last := daysIn(y, month); d > last {
		d = last
	}
	return time.Date(y, month, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// CycleStart is the start of cycle n: the anchor plus n calendar months.
func CycleStart(anchor time.Time, n int) time.Time { return AddMonths(anchor, n) }

// CycleAt returns the cycle that contains t: the n with
// CycleStart(anchor, n) <= t < CycleStart(anchor, n+1). n is negative for
// times before the anchor.
func CycleAt(anchor, t time.Time) int {
	anchor, t = anchor.UTC(), t.UTC()
	n := (t.Year()-anchor.Year())*12 + int(t.Month()) - int(anchor.Month())
	for CycleStart(anchor, n).After(t) {
		n--
	}
	for !CycleStart(anchor, n+1).After(t) {
		n++
	}
	return n
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int) int { return a - floorDiv(a, b)*b }
