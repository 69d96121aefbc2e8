package bench

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueWithinPrecision(t *testing.T) {
	t.Parallel()
	vals := []int64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 999_999, 1 << 30, histMax}
	for i := range 2000 {
		vals = append(vals, rand.Int64N(histMax), int64(i))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if float64(hi-lo) > float64(v)/histSubCount {
			t.Fatalf("bucket of %d is [%d, %d]: wider than 1/%d of the value", v, lo, hi, histSubCount)
		}
	}
	// Buckets are contiguous: each starts where the one before ends.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

func TestPercentilesOfKnownData(t *testing.T) {
	t.Parallel()
	// 1 µs to 100,000 µs, one of each, shuffled: percentile q is q·100 ms.
	var h Histogram
	vals := rand.Perm(100_000)
	for _, v := range vals {
		h.Record(time.Duration(v+1) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 50 * time.Millisecond},
		{0.90, 90 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 99_900 * time.Microsecond},
		{0.0001, 10 * time.Microsecond},
	} {
		got := h.Percentile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 1.0/histSubCount {
			t.Errorf("p%v = %v, want %v within %.2f%%", tc.q*100, got, tc.want, 100.0/histSubCount)
		}
	}
	if h.Count() != 100_000 || h.Min() != time.Microsecond || h.Max() != 100*time.Millisecond {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if got := h.Percentile(1); got != 100*time.Millisecond {
		t.Errorf("p100 = %v, want the max", got)
	}
	if mean := h.Mean(); mean < 50*time.Millisecond-time.Microsecond || mean > 50*time.Millisecond+time.Microsecond {
		t.Errorf("mean = %v, want 50.0005ms", mean)
	}
}

func TestPercentilesOfSkewedData(t *testing.T) {
	t.Parallel()
	// 990 fast pairs at 1 ms, 9 at 10 ms, 1 at 1 s: p50 1 ms, p99 1 ms
	// (rank 990), p99.9 10 ms (rank 999), max 1 s.
	var h Histogram
	for range 990 {
		h.Record(time.Millisecond)
	}
	for range 9 {
		h.Record(10 * time.Millisecond)
	}
	h.Record(time.Second)
	near := func(got, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= float64(want)/histSubCount
	}
	if p := h.Percentile(0.5); !near(p, time.Millisecond) {
		t.Errorf("p50 = %v", p)
	}
	if p := h.Percentile(0.99); !near(p, time.Millisecond) {
		t.Errorf("p99 = %v", p)
	}
	if p := h.Percentile(0.999); !near(p, 10*time.Millisecond) {
		t.Errorf("p99.9 = %v", p)
	}
	if h.Max() != time.Second {
		t.Errorf("max = %v", h.Max())
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	t.Parallel()
	var a, b, all Histogram
	for i := range 10_000 {
		d := time.Duration(rand.Int64N(int64(50 * time.Millisecond)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(new(Histogram))
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if m.Percentile(q) != all.Percentile(q) {
			t.Errorf("p%v: merged %v, together %v", q*100, m.Percentile(q), all.Percentile(q))
		}
	}
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() {
		t.Errorf("merged count/min/max %d %v %v, together %d %v %v", m.Count(), m.Min(), m.Max(), all.Count(), all.Min(), all.Max())
	}
}

func TestEmptyAndClampedValues(t *testing.T) {
	t.Parallel()
	var h Histogram
	if h.Percentile(0.5) != 0 || h.Mean() != 0 {
		t.Error("an empty histogram has no percentiles")
	}
	h.Record(-time.Second)
	h.Record(time.Duration(math.MaxInt64))
	if h.Min() != 0 || h.Max() != time.Duration(histMax) {
		t.Errorf("min %v max %v: want clamped to 0 and %v", h.Min(), h.Max(), time.Duration(histMax))
	}
}
