package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// The writer's statements are prepared once, when the store opens: parsing
// SQL costs more than running it, and the writer runs the same few
// statements all day. (They must be prepared before any transaction: the
// writer has one connection, and a transaction holds it.)
var writerQueries = []string{
	qAccount, qCharge, qCycle, qDue, qNextAfter, qIdem,
	qInsertWorkspace, qUpdateWorkspace, qUpsertCycle, qInsertCharge, qFinishCharge, qInsertEntry, qUpsertIdem,
}

type stmtCache struct {
	m map[string]*sql.Stmt
}

func (c *stmtCache) prepare(ctx context.Context, db *sql.DB) error {
	c.m = make(map[string]*sql.Stmt, len(writerQueries))
	for _, q := range writerQueries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("preparing %q: %w", q, err)
		}
		c.m[q] = s
	}
	return nil
}

func (c *stmtCache) get(query string) (*sql.Stmt, error) {
	if s, ok := c.m[query]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("sqlite: statement not prepared: %s", query)
}

func (c *stmtCache) close() {
	for _, s := range c.m {
		s.Close()
	}
}
