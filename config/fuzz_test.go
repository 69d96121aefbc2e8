package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzLoad writes any bytes to a catalog file and loads it. Load never
// panics; an error names the file; a catalog it accepts is valid, and
// written back out (as JSON, which is YAML) loads again to the same catalog.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"operations:\n  - {id: content_rewrite, name: Content rewriting, cost: 1, description: Rewrite a text field}\nplans:\n  - {id: free, name: Free, monthly_credits: 250, price_cents: 0, currency: usd}\n",
		"operations:\n  - id: a\n    name: A\n    cost: 0\nplans:\n  - id: p\n    name: P\n    monthly_credits: 1\n    price_cents: 1\n  - {id: q, name: Q, monthly_credits: 2, price_cents: 2}\n",
		`{"operations":[{"id":"a","name":"A","cost":1}],"plans":[{"id":"p","name":"P","monthly_credits":1,"price_cents":0}]}`,
		"", "~", "[]", "---\n---\n", "operations: []\nplans: []\n",
		"operations:\n  - {id: a, name: A, cost: 1.5}\nplans:\n  - {id: p, name: P, monthly_credits: 1, price_cents: 0}\n",
		"operations:\n  - {id: a, name: A, cost: \"1\"}\nplans:\n  - {id: p, name: P, monthly_credits: 1, price_cents: 0}\n",
		"operations:\n  - {id: a, name: A, cost: -1}\nplans:\n  - {id: p, name: P, monthly_credits: 99999999999999999999, price_cents: 0}\n",
		"operations:\n  - {id: A, name: A, cost: 1, extra: x}\nplans:\n  - {id: p, name: P, monthly_credits: 1, price_cents: 0}\n",
		"operations: &a [*a]\n",
		"a: &a [*a, *a, *a, *a]\nb: &b [*a, *a, *a, *a]\n",
		"operations:\n  - {id: a, name: A, cost: 0x10}\nplans:\n  - {id: p, name: P, monthly_credits: 1_000, price_cents: 0o7}\n",
		"\xff\xfe", "operations:\n\t- x\n", "? [a]\n: b\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "catalog.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cat, err := Load(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Fatalf("error %q does not start with the file's name", err)
			}
			return
		}
		if err := cat.Validate(); err != nil {
			t.Fatalf("Load accepted an invalid catalog %+v: %v", cat, err)
		}
		out, err := json.Marshal(cat)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("the accepted catalog written back (%s) does not load: %v", out, err)
		}
		if !reflect.DeepEqual(again, cat) {
			t.Fatalf("round trip changed the catalog:\n%+v\n%+v", cat, again)
		}
	})
}
