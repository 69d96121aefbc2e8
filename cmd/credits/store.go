package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/credits-dev/credits/ai"
	"github.com/credits-dev/credits/auth"
	"github.com/credits-dev/credits/ledger"
	"github.com/credits-dev/credits/postgres"
	"github.com/credits-dev/credits/sqlite"
)

// store is what the commands need of a store: money, auth and AI requests.
type store interface {
	ledger.Store
	auth.Store
	ai.RequestStore
}

// openStore opens the store a --db value names: a postgres:// or
// postgresql:// URL, else a SQLite file path. Opening applies migrations.
func openStore(ctx context.Context, db string) (store, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		st, err := postgres.Open(ctx, db)
		if err != nil {
			// pgx's messages can carry the URL: say it once, redacted.
			return nil, fmt.Errorf("--db %s: %v", redact(db), strings.ReplaceAll(err.Error(), db, redact(db)))
		}
		return st, nil
	}
	return sqlite.Open(ctx, db)
}

// redact hides a URL's password in messages.
func redact(db string) string {
	at := strings.LastIndex(db, "@")
	scheme := strings.Index(db, "://")
	if at < 0 || scheme < 0 {
		return db
	}
	userinfo := db[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return db[:scheme+3] + user + ":***" + db[at:]
	}
	return db
}
