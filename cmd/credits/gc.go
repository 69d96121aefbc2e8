package main

import (
	"runtime/debug"
	"runtime/metrics"
)

// The garbage collector's settings. A pair allocates about 14 KB that is
// garbage at once, while what stays live is bounded by the store's caches
// (accounts, held charges, ledger heads, the overlay), not by how many
// workspaces exist. So the process lets the heap grow to five times what is
// live (GOGC=400) instead of twice, and caps the Go runtime's memory at
// 110 MiB, where the collector runs as often as it must to stay under it.
// Measured with credits bench, run in turn twice each way: CPU per pair
// 52.3-52.8 -> 46.8-48.7 µs (engine/sqlite/many) and 34.4-35.4 -> 31.3-31.8
// (hot); with 1,000,000 workspaces under load 161.0 MiB resident, peak
// 162.8 (the memory target is 200 MB). GOGC=400 with a 150 MiB cap peaked at
// 202.7 MiB.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 110 << 20 // bytes
)

// gcSettings returns the settings to apply: each only where its standard
// variable (GOGC, GOMEMLIMIT) is unset, since the runtime has already applied
// what the operator chose. 0 means leave it.
func gcSettings(getenv func(string) string) (percent int, limitBytes int64) {
	if getenv("GOGC") == "" {
		percent = defaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		limitBytes = defaultMemoryLimit
	}
	return percent, limitBytes
}

// applyGC sets the process's garbage collector (main only: it is
// process-wide, so tests that call Run keep theirs).
func applyGC(getenv func(string) string) {
	percent, limit := gcSettings(getenv)
	if percent != 0 {
		debug.SetGCPercent(percent)
	}
	if limit != 0 {
		debug.SetMemoryLimit(limit)
	}
}

// gcAttrs are the collector's settings in effect, for the log: what
// applyGC set, or what the operator's GOGC and GOMEMLIMIT did.
func gcAttrs() []any {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return []any{"gogc", s[0].Value.Uint64(), "memory_limit_bytes", s[1].Value.Uint64()}
}
