package bench

import "testing"

func TestParseCPULine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want cpuTicks
	}{
		{"cpu  98905 0 31347 237808 20591 0 5932 3474 0 0", cpuTicks{total: 98905 + 31347 + 237808 + 20591 + 5932 + 3474, steal: 3474, busy: 98905 + 31347 + 5932}},
		{"cpu  1 2 3 4 5 6 7 8 9 10", cpuTicks{total: 36, steal: 8, busy: 1 + 2 + 3 + 6 + 7}}, // guest time is inside user and nice
		{"cpu  1 2 3 4 5 6 7", cpuTicks{}},   // an old kernel without steal
		{"cpu0 1 2 3 4 5 6 7 8", cpuTicks{}}, // a line of one CPU
		{"cpu  1 2 x 4 5 6 7 8", cpuTicks{}},
		{"", cpuTicks{}},
	} {
		if got := parseCPULine([]byte(tc.line)); got != tc.want {
			t.Errorf("parseCPULine(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
	a, b := cpuTicks{total: 100, steal: 10, busy: 40}, cpuTicks{total: 150, steal: 12, busy: 70}
	if got := b.since(a); got != (cpuTicks{total: 50, steal: 2, busy: 30}) {
		t.Errorf("since = %+v", got)
	}
	if got := a.since(b); got != (cpuTicks{}) {
		t.Errorf("a counter going back gives %+v, want nothing", got)
	}
}
