package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/sqlite"
	"github.com/credits-dev/credits/storetest"
)

func open(t *testing.T) ledger.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "credits.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}
