package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// runCmd runs the program in-process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// golden compares got with testdata/name.golden (or rewrites it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

func TestEstimateGolden(t *testing.T) {
	t.Setenv("CREDITS_CONFIG", "") // the built-in catalog unless --config
	tests := []struct {
		name     string
		args     []string
		contains []string
	}{
		{
			name: "estimate_free",
			args: []string{"section_generation=10", "content_rewrite=15", "image_1k=3"},
			contains: []string{
				"section_generation     10    10       100\n",
				"TOTAL                                 205\n",
				"\nSmallest plan: Free (250 credits/month, $0.00/month)\n",
			},
		},
		{
			name: "estimate_starter",
			args: []string{"section_generation=30", "content_rewrite=50", "image_1k=10", "image_2k=2"},
			contains: []string{
				"770\n",
				"Free               250        $0.00  no\n",
				"Starter          1,000       $49.00  yes\n",
				"\nSmallest plan: Starter (1,000 credits/month, $49.00/month)\n",
			},
		},
		{
			name: "estimate_none",
			args: []string{"image_2k=100", "avatar_selection=7"},
			contains: []string{
				"6,000\n",
				"avatar_selection      7     0         0\n",
				"Pro              5,000       $79.00  no\n",
				"\nSmallest plan: none: 6,000 credits is more than Pro gives (5,000 credits/month)\n",
			},
		},
		{
			name: "estimate_config",
			args: []string{"--config", filepath.Join("testdata", "catalog.yaml"), "translate=30", "video_10s=5"},
			contains: []string{
				"translate     30     2        60\n",
				"TOTAL                        660\n",
				"Hobby                100        $5.00  no\n",
				"Team (EU)          2,000   129.00 EUR  yes\n",
				"\nSmallest plan: Team (EU) (2,000 credits/month, 129.00 EUR/month)\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"estimate"}, tt.args...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden(t, tt.name, out)
			// Independent of the golden file, so that -update cannot bless
			// a wrong answer.
			for _, s := range tt.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for i, line := range strings.Split(out, "\n") {
				if strings.HasSuffix(line, " ") {
					t.Errorf("line %d has trailing blanks: %q", i+1, line)
				}
			}
		})
	}
}

// The names are left-aligned and the numbers right-aligned.
func TestEstimateAlignment(t *testing.T) {
	t.Setenv("CREDITS_CONFIG", "")
	_, out, _ := runCmd(t, "estimate", "content_rewrite=1000", "image_1k=1")
	lines := strings.Split(out, "\n")
	want := []string{
		"OPERATION        COUNT  COST  SUBTOTAL",
		"content_rewrite  1,000     1     1,000",
		"image_1k             1    30        30",
		"TOTAL                            1,030",
		"",
		"PLAN     CREDITS/MONTH  PRICE/MONTH  FITS",
		"Free               250        $0.00  no",
		"Starter          1,000       $49.00  no",
		"Pro              5,000       $79.00  yes",
		"",
		"Smallest plan: Pro (5,000 credits/month, $79.00/month)",
		"",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
}

func TestEstimateBadArgs(t *testing.T) {
	t.Setenv("CREDITS_CONFIG", "")
	tests := []struct {
		args []string
		want []string // all in stderr
	}{
		{nil, []string{"at least one OPERATION=COUNT"}},
		{[]string{"image_1k"}, []string{`"image_1k"`, "OPERATION=COUNT"}},
		{[]string{"=3"}, []string{`"=3"`, "OPERATION=COUNT"}},
		{[]string{"video=3"}, []string{`"video=3"`, `unknown operation "video"`, "known: content_rewrite"}},
		{[]string{"image_1k=x"}, []string{`"image_1k=x"`, "OPERATION=COUNT"}},
		{[]string{"image_1k=1.5"}, []string{`"image_1k=1.5"`}},
		{[]string{"image_1k=-1"}, []string{`"image_1k=-1"`, "count must be an integer from 0"}},
		{[]string{"content_rewrite=2", "image_1k=99999999999"}, []string{`"image_1k=99999999999"`, "count must be"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"estimate"}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.HasPrefix(errOut, "credits: ") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr %q: want one line starting with \"credits: \"", errOut)
			}
			for _, s := range tt.want {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
}

func TestEstimateBadConfig(t *testing.T) {
	t.Setenv("CREDITS_CONFIG", "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("operations:\n  - {id: a, name: A}\nplans:\n  - {id: p, name: P, monthly_credits: 1, price_cents: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		code, out, errOut := runCmd(t, "estimate", "--config", path, "a=1")
		if code == 0 || out != "" || !strings.Contains(errOut, path) {
			t.Errorf("--config %s: exit %d, stdout %q, stderr %q: want non-zero naming the file", path, code, out, errOut)
		}
	}
	// The environment variable is the flag's default.
	t.Setenv("CREDITS_CONFIG", filepath.Join("testdata", "catalog.yaml"))
	code, out, errOut := runCmd(t, "estimate", "translate=1")
	if code != 0 || !strings.Contains(out, "Smallest plan: Hobby (100 credits/month, $5.00/month)") {
		t.Errorf("CREDITS_CONFIG: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
