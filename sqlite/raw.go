package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// rawConn runs the materializer's statements on the writer connection's
// driver connection, past database/sql. For each statement database/sql
// checks and converts every argument into a new slice (3,072 of them for a
// 256-row statement of charges) and takes its locks: in a profile of
// credits bench, with 64-row statements, that slice was 7% of all the bytes
// allocated. Here one
// slice of arguments serves every statement, and a statement runs without
// a context of its own (the driver starts a goroutine per statement to
// watch one); the window checks its context between statements instead.
//
// The statements are prepared on the driver connection they run on, the
// first time each is needed, and prepared again if database/sql has
// replaced that connection. The materializer uses it, and Open and Close
// while the materializer is not running: never two at once.
type rawConn struct {
	dc    any // the driver connection stmts belong to
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
}

// use makes dc the connection r runs on.
func (r *rawConn) use(dc any) {
	if r.dc == dc {
		return
	}
	// The old connection is gone: database/sql replaces a connection only
	// once the driver calls it unusable or a caller reported it bad, and
	// closes it; its statements cannot be finalized after that (the driver
	// has let go of its SQLite thread state), so they are dropped.
	// TestMaterializerNewConnection.
	r.dc, r.stmts = dc, map[string]driver.Stmt{}
}

func (r *rawConn) stmt(ctx context.Context, q string) (driver.Stmt, error) {
	if st, ok := r.stmts[q]; ok {
		return st, nil
	}
	p, ok := r.dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("sqlite: the driver connection %T cannot prepare with a context", r.dc)
	}
	st, err := p.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("preparing %q: %w", q, err)
	}
	r.stmts[q] = st
	return st, nil
}

// prepare prepares the queries now, so that a mistake in one stops Open.
func (r *rawConn) prepare(ctx context.Context, queries []string) error {
	for _, q := range queries {
		if _, err := r.stmt(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// bind fills the reused argument slice with args.
func (r *rawConn) bind(args []any) []driver.NamedValue {
	r.args = r.args[:0]
	for i, v := range args {
		r.args = append(r.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return r.args
}

// exec runs q with args, which must be driver values (int64, string, []byte
// or nil: nothing converts them here).
func (r *rawConn) exec(ctx context.Context, q string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := r.stmt(ctx, q)
	if err != nil {
		return err
	}
	_, err = st.(driver.StmtExecContext).ExecContext(context.Background(), r.bind(args))
	return err
}

// queryInt64 runs q, which selects one integer column, and returns the
// first row's value; ok is false when there is no row.
func (r *rawConn) queryInt64(ctx context.Context, q string, args ...any) (v int64, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	st, err := r.stmt(ctx, q)
	if err != nil {
		return 0, false, err
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), r.bind(args))
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); errors.Is(err, io.EOF) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	v, ok = dest[0].(int64)
	if !ok {
		return 0, false, fmt.Errorf("%q: an integer was expected, got %T", q, dest[0])
	}
	return v, true, nil
}

// close closes the statements; dc must be the connection they are on.
func (r *rawConn) close(dc any) {
	if r.dc != dc {
		return
	}
	for _, st := range r.stmts {
		st.Close()
	}
	r.dc, r.stmts = nil, nil
}

// onRaw runs f on the writer connection's driver connection, made the one
// s.raw runs on.
func (s *Store) onRaw(ctx context.Context, f func(dc any) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		s.raw.use(dc)
		return f(dc)
	})
}
