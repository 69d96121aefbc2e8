package httpapi

import "testing"

// The bodies of AI operations and adjustments go through the same decoder
// as the others (fuzz_internal_test.go); these targets cover their types.

var moreBodySeeds = []string{
	`{"prompt":"make it friendlier","text":"we sell shoes","member_id":"m1"}`,
	`{"prompt":null,"text":null}`,
	`{"prompt":1}`,
	`{"text":["a"]}`,
	`{"prompt":"[fail]"}`,
	`{"amount":-50,"reason":"refund"}`,
	`{"amount":9223372036854775807,"reason":"max"}`,
	`{"amount":-9223372036854775808,"reason":"min"}`,
	`{"amount":1.0,"reason":"x"}`,
	`{"amount":"5","reason":"x"}`,
	`{"reason":{"a":1}}`,
}

func seedMore(f *testing.F) {
	seed(f)
	for _, s := range moreBodySeeds {
		f.Add([]byte(s))
	}
}

func FuzzDecodeAI(f *testing.F) {
	seedMore(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req AIRequest
		checkDecode(t, body, &req)
	})
}

func FuzzDecodeAdjust(f *testing.F) {
	seedMore(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req AdjustRequest
		checkDecode(t, body, &req)
	})
}
