package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/credits-dev/credits"
)

func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadContractExample(t *testing.T) {
	// The contract's example, less currency and description to see the defaults.
	path := write(t, `operations:
  - {id: content_rewrite, name: Content rewriting, cost: 1}
plans:
  - {id: free, name: Free, monthly_credits: 250, price_cents: 0}
`)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := credits.Catalog{
		Operations: []credits.Operation{{ID: "content_rewrite", Name: "Content rewriting", Cost: 1}},
		Plans:      []credits.Plan{{ID: "free", Name: "Free", MonthlyCredits: 250, PriceCents: 0, Currency: "usd"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLoadDefaults(t *testing.T) {
	data, err := yaml.Marshal(credits.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(write(t, string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if want := credits.DefaultCatalog(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	const plans = "plans:\n  - {id: free, name: Free, monthly_credits: 250, price_cents: 0}\n"
	const ops = "operations:\n  - {id: content_rewrite, name: Rewrite, cost: 1}\n"
	tests := []struct {
		name, content string
		want          []string // substrings of the error, besides the file name
	}{
		{"unknown key in entry", ops + "plans:\n  - {id: free, name: Free, monthly_credits: 250, price_cents: 0, colour: red}\n", []string{"line 4", "colour"}},
		{"unknown top-level key", ops + plans + "extra: 1\n", []string{"line 5", "extra"}},
		{"missing operation id", "operations:\n  - {name: Rewrite, cost: 1}\n" + plans, []string{"operations[0]: id: required"}},
		{"missing operation name", "operations:\n  - {id: content_rewrite, cost: 1}\n" + plans, []string{"operations[0] (content_rewrite): name: required"}},
		{"missing cost", "operations:\n  - {id: content_rewrite, name: Rewrite}\n" + plans, []string{"operations[0] (content_rewrite): cost: required"}},
		{"null cost", "operations:\n  - id: content_rewrite\n    name: Rewrite\n    cost:\n" + plans, []string{"operations[0] (content_rewrite): cost: required"}},
		{"missing plan id", ops + "plans:\n  - {name: Free, monthly_credits: 250, price_cents: 0}\n", []string{"plans[0]: id: required"}},
		{"missing plan name", ops + "plans:\n  - {id: free, monthly_credits: 250, price_cents: 0}\n", []string{"plans[0] (free): name: required"}},
		{"missing monthly_credits", ops + plans + "  - {id: starter, name: Starter, price_cents: 4900}\n", []string{"plans[1] (starter): monthly_credits: required"}},
		{"missing price_cents", ops + "plans:\n  - {id: free, name: Free, monthly_credits: 250}\n", []string{"plans[0] (free): price_cents: required"}},
		{"negative cost", "operations:\n  - {id: content_rewrite, name: Rewrite, cost: -1}\n" + plans, []string{"operations[0] (content_rewrite): cost: must be an integer >= 0, got -1"}},
		{"float cost", "operations:\n  - {id: content_rewrite, name: Rewrite, cost: 1.5}\n" + plans, []string{"operations[0] (content_rewrite): cost: must be an integer >= 0, got 1.5"}},
		{"string cost", "operations:\n  - {id: content_rewrite, name: Rewrite, cost: \"5\"}\n" + plans, []string{`cost: must be an integer >= 0, got "5"`}},
		{"list cost", "operations:\n  - {id: content_rewrite, name: Rewrite, cost: [1]}\n" + plans, []string{"cost: must be an integer >= 0, got !!seq"}},
		{"float monthly_credits", ops + "plans:\n  - {id: free, name: Free, monthly_credits: 2.5e2, price_cents: 0}\n", []string{"plans[0] (free): monthly_credits: must be an integer"}},
		{"negative price_cents", ops + "plans:\n  - {id: free, name: Free, monthly_credits: 250, price_cents: -5}\n", []string{"plans[0] (free): price_cents: must be an integer >= 0, got -5"}},
		{"cost too large", "operations:\n  - {id: content_rewrite, name: Rewrite, cost: 99999999999999}\n" + plans, []string{"operations[0].cost"}},
		{"bad id chars", "operations:\n  - {id: content-rewrite, name: Rewrite, cost: 1}\n" + plans, []string{"operations[0].id", "content-rewrite"}},
		{"uppercase id", ops + "plans:\n  - {id: Free, name: Free, monthly_credits: 250, price_cents: 0}\n", []string{"plans[0].id", `"Free"`}},
		{"empty name", "operations:\n  - {id: content_rewrite, name: \"\", cost: 1}\n" + plans, []string{"operations[0].name"}},
		{"duplicate operation ids", ops + "  - {id: content_rewrite, name: Again, cost: 2}\n" + plans, []string{"operations[1].id", "duplicate"}},
		{"duplicate plan ids", ops + plans + "  - {id: free, name: Again, monthly_credits: 300, price_cents: 0}\n", []string{"plans[1].id", "duplicate"}},
		{"plans not ascending", ops + plans + "  - {id: starter, name: Starter, monthly_credits: 100, price_cents: 4900}\n", []string{"plans[1].monthly_credits", "ascending"}},
		{"no operations", plans, []string{"operations: at least one"}},
		{"empty operations", "operations: []\n" + plans, []string{"operations: at least one"}},
		{"no plans", ops, []string{"plans: at least one"}},
		{"empty file", "", []string{"empty"}},
		{"comments only", "# nothing\n", []string{"empty"}},
		{"null document", "~\n", []string{"must be a mapping"}},
		{"list document", "- a\n", []string{"must be a mapping"}},
		{"two documents", ops + plans + "---\n" + ops, []string{"line 5", "single YAML document"}},
		{"syntax error", "operations: [\n", []string{"line"}},
		{"duplicate key", "operations:\n  - {id: a, id: b, name: A, cost: 1}\n" + plans, []string{"line 2", `"id" already defined`}},
		{"operations not a list", "operations: {id: a}\n" + plans, []string{"line 1", "!!map"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.content))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append([]string{"config.yaml: "}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadValidateErrorUnwraps(t *testing.T) {
	_, err := Load(write(t, "operations:\n  - {id: A, name: A, cost: 1}\nplans:\n  - {id: free, name: Free, monthly_credits: 250, price_cents: 0}\n"))
	if e := credits.AsError(err); e == nil || e.Field != "operations[0].id" {
		t.Errorf("got %v, want a *credits.Error on operations[0].id", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !os.IsNotExist(err) {
		t.Errorf("got %v, want a not-exist error naming nope.yaml", err)
	}
}

func TestCheckPlansInUse(t *testing.T) {
	cat := credits.DefaultCatalog() // free, starter, pro
	tests := []struct {
		name  string
		usage map[string]int
		want  string // "" for no error
	}{
		{"nil usage", nil, ""},
		{"all kept", map[string]int{"free": 10, "starter": 3, "pro": 1}, ""},
		{"dropped but unused", map[string]int{"free": 2, "legacy": 0}, ""},
		{"one dropped", map[string]int{"free": 2, "legacy": 3}, `plan "legacy" is used by 3 workspaces but the catalog drops it`},
		{"singular", map[string]int{"legacy": 1}, `plan "legacy" is used by 1 workspace but the catalog drops it`},
		{"several dropped, sorted", map[string]int{"zeta": 2, "alpha": 5, "free": 1, "mid": 0},
			"plan \"alpha\" is used by 5 workspaces but the catalog drops it\nplan \"zeta\" is used by 2 workspaces but the catalog drops it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPlansInUse(cat, tt.usage)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
