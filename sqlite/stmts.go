package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Statements are prepared once, when the store opens: parsing SQL costs
// more than running it, and the same few statements run all day. The
// materializer's are prepared on its own connection (see liteConn); the
// engine's lookups on the read pool, where database/sql prepares them once
// per connection.
var readQueries = []string{qAccount, qCharge, qCycle, qDue, qNextAfter, qIdem, qIdemSeq}

type stmtCache struct {
	m map[string]*sql.Stmt
}

func (c *stmtCache) prepare(ctx context.Context, db *sql.DB, queries []string) error {
	c.m = make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("preparing %q: %w", q, err)
		}
		c.m[q] = s
	}
	return nil
}

func (c *stmtCache) close() {
	for _, s := range c.m {
		s.Close()
	}
}
