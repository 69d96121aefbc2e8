package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestGCSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"neither set: both defaults", nil, defaultGCPercent, defaultMemoryLimit},
		{"GOGC set: only the limit", map[string]string{"GOGC": "100"}, 0, defaultMemoryLimit},
		{"GOGC=off set: only the limit", map[string]string{"GOGC": "off"}, 0, defaultMemoryLimit},
		{"GOMEMLIMIT set: only the percent", map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, 0},
		{"both set: neither", map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, l := gcSettings(func(k string) string { return tt.env[k] })
			if p != tt.wantPercent || l != tt.wantLimit {
				t.Errorf("gcSettings = %d, %d; want %d, %d", p, l, tt.wantPercent, tt.wantLimit)
			}
		})
	}
}

// TestServeGCSettings runs the real binary: without GOGC and GOMEMLIMIT it
// runs with the service's settings, and an operator's values win.
func TestServeGCSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"defaults", []string{"GOGC=", "GOMEMLIMIT="}, fmt.Sprintf("gogc=%d memory_limit_bytes=%d", defaultGCPercent, defaultMemoryLimit)},
		{"operator's values", []string{"GOGC=150", "GOMEMLIMIT=300MiB"}, fmt.Sprintf("gogc=150 memory_limit_bytes=%d", 300<<20)},
	}
	for i, tt := range tests {
		p := startProcEnv(t, bin, filepath.Join(dir, fmt.Sprintf("credits-%d.db", i)), tt.env...)
		// serve logs the settings before it listens, and startProcEnv
		// returns once it listens.
		if !strings.Contains(p.log.String(), tt.want) {
			t.Errorf("%s: the log does not say %q:\n%s", tt.name, tt.want, p.log)
		}
	}
}
