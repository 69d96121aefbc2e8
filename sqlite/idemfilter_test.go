package sqlite

import (
	"fmt"
	"testing"
)

// The filter never forgets a key it was given, and says "maybe" to about
// 1% of the others.
func TestIdemFilter(t *testing.T) {
	f := newIdemFilter(0)
	const n = 200_000
	for i := range n {
		f.add(fmt.Sprint("w", i%97), fmt.Sprint("k", i))
	}
	for i := range n {
		if !f.mayContain(fmt.Sprint("w", i%97), fmt.Sprint("k", i)) {
			t.Fatalf("key %d was added but is reported absent", i)
		}
	}
	maybe := 0
	for i := range n {
		if f.mayContain(fmt.Sprint("w", i%97), fmt.Sprint("other", i)) {
			maybe++
		}
	}
	// Sized for 2M keys and holding 200k, it should almost never say maybe.
	if rate := float64(maybe) / n; rate > 0.01 {
		t.Fatalf("%.4f of absent keys reported maybe, want under 1%%", rate)
	}
	// A key in another workspace is another key.
	if f.mayContain("w1", "k0") && f.mayContain("w2", "k0") && f.mayContain("w3", "k0") {
		t.Fatal("the workspace is not part of the key")
	}
	// Filled past its capacity it degrades to "maybe", never to "absent".
	full := newIdemFilter(0)
	full.bits = full.bits[:1]
	full.m = 64
	for i := range 1000 {
		full.add("w", fmt.Sprint(i))
	}
	for i := range 1000 {
		if !full.mayContain("w", fmt.Sprint(i)) {
			t.Fatalf("overfull filter lost key %d", i)
		}
	}
}
