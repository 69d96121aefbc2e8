package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear (HDR-like): values below 2^histSubBits
// nanoseconds get a bucket each; above, every power of two is split into
// 2^histSubBits equal buckets, so any recorded value is known to within
// 1/2^histSubBits (0.8 %) of itself. Values past histMax are clamped.
const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits
	histMaxBits  = 40 // 2^40 ns, about 18 minutes
	histBuckets  = histSubCount + (histMaxBits-histSubBits)*histSubCount
	histMax      = int64(1)<<histMaxBits - 1
)

// Histogram counts latencies. The zero value is ready; it is not safe for
// concurrent use: give each worker its own and Merge them.
type Histogram struct {
	counts   [histBuckets]uint64
	total    uint64
	min, max int64
	sum      float64
}

func bucketOf(v int64) int {
	if v < histSubCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1 // v>>shift is in [128, 256)
	return histSubCount + shift*histSubCount + int(v>>shift) - histSubCount
}

// bucketRange is the lowest and highest value bucket i holds.
func bucketRange(i int) (lo, hi int64) {
	if i < histSubCount {
		return int64(i), int64(i)
	}
	shift := (i - histSubCount) / histSubCount
	m := int64(i-histSubCount-shift*histSubCount) + histSubCount
	return m << shift, (m+1)<<shift - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > histMax {
		v = histMax
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest recorded value, exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Sum is the total of the recorded values.
func (h *Histogram) Sum() time.Duration { return time.Duration(h.sum) }

// Mean is the average of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Percentile returns the value below or at which a fraction q (0 to 1) of
// the recorded values lie: the middle of the bucket holding the value of
// rank ceil(q·count), kept within the exact min and max. Zero when empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.total {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
