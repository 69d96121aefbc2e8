package sqlite

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// liteConn is the materializer's own connection, opened and driven with
// SQLite's C API (the driver's transpiled library, modernc.org/sqlite/lib)
// instead of through database/sql and the driver. The driver opens every
// connection SQLITE_OPEN_FULLMUTEX, so each argument bound takes and
// releases the connection's recursive mutex, and it copies each text and
// blob argument into memory of its own, allocated and freed per argument:
// in a CPU profile of credits bench (engine/sqlite/many) binding was 10.6%
// of the process, 7% of it those mutexes. This connection is opened
// SQLITE_OPEN_NOMUTEX (one goroutine uses it at a time: the materializer,
// or Open and Close while the materializer is not running) and copies a
// statement's text and blob arguments into one buffer it keeps, bound
// SQLITE_STATIC.
//
// It runs the statements the materializer needs and nothing else: every
// statement is prepared once, and every execution binds all of its
// parameters (so a binding left pointing into the buffer from an earlier
// execution is never read).
type liteConn struct {
	tls   *libc.TLS
	db    uintptr
	cell  uintptr // 8 bytes of C memory: out-parameters
	stmts map[string]liteStmt
	buf   uintptr // C memory the text and blob arguments are copied into
	bufN  int
}

// liteBufMin is the argument buffer's first size: a 256-row statement of
// the materializer's takes tens of KiB at most (an idempotency row with its
// stored answer is about 200 bytes); it grows when one needs more.
const liteBufMin = 64 << 10

type liteStmt struct {
	p      uintptr
	params int
}

// cellPtr reads the pointer SQLite wrote to c.cell. unsafe.Add keeps go vet's
// unsafeptr check satisfied: the address is C memory, not Go's.
func (c *liteConn) cellPtr() uintptr { return *(*uintptr)(unsafe.Add(nil, c.cell)) }

// cmem is n bytes of C memory at p, as a Go slice.
func cmem(p uintptr, n int) []byte { return unsafe.Slice((*byte)(unsafe.Add(nil, p)), n) }

// openLite opens the database file at path (which must exist, in WAL
// mode) and runs the pragmas on it.
func openLite(path string, pragmas []string) (_ *liteConn, err error) {
	c := &liteConn{tls: libc.NewTLS(), stmts: map[string]liteStmt{}}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.cell = libc.Xmalloc(c.tls, 8); c.cell == 0 {
		return nil, errors.New("sqlite: out of memory")
	}
	// The buffer is never NULL: SQLite binds a NULL pointer as NULL, and
	// an empty string or blob must stay one.
	if c.buf = libc.Xmalloc(c.tls, liteBufMin); c.buf == 0 {
		return nil, errors.New("sqlite: out of memory")
	}
	c.bufN = liteBufMin
	name, err := libc.CString(path)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, name)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, c.cell, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = c.cellPtr()
	if rc != sqlite3.SQLITE_OK {
		if c.db == 0 {
			return nil, fmt.Errorf("sqlite: opening %s: %s", path, libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc)))
		}
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, c.err(rc))
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	for _, p := range pragmas {
		if err := c.exec(context.Background(), "PRAGMA "+p); err != nil {
			return nil, fmt.Errorf("sqlite: PRAGMA %s: %w", p, err)
		}
	}
	return c, nil
}

// liteError is an error SQLite returned, with its extended result code.
type liteError struct {
	code int32
	msg  string
}

func (e *liteError) Error() string { return fmt.Sprintf("%s (%d)", e.msg, e.code) }

func (c *liteConn) err(rc int32) error {
	return &liteError{code: rc, msg: libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))}
}

func (c *liteConn) stmt(q string) (liteStmt, error) {
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	z, err := libc.CString(q)
	if err != nil {
		return liteStmt{}, err
	}
	defer libc.Xfree(c.tls, z)
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, z, -1, c.cell, 0); rc != sqlite3.SQLITE_OK {
		return liteStmt{}, fmt.Errorf("preparing %q: %w", q, c.err(rc))
	}
	st := liteStmt{p: c.cellPtr()}
	if st.p == 0 {
		return liteStmt{}, fmt.Errorf("preparing %q: no statement", q)
	}
	st.params = int(sqlite3.Xsqlite3_bind_parameter_count(c.tls, st.p))
	c.stmts[q] = st
	return st, nil
}

// prepare prepares the queries now, so that a mistake in one stops Open.
func (c *liteConn) prepare(queries []string) error {
	for _, q := range queries {
		if _, err := c.stmt(q); err != nil {
			return err
		}
	}
	return nil
}

// A liteArg is one argument of a statement on liteConn, held without an
// interface: boxed in one, each int64 and string of a window's rows was an
// allocation of its own, about 60 a pair.
type liteArg struct {
	kind argKind
	i    int64
	s    string
	b    []byte
}

type argKind uint8

const (
	argNull argKind = iota // the zero liteArg is NULL
	argInt
	argText
	argBlob
)

// liteArgs appends arguments: args = args.int(1).text("a").
type liteArgs []liteArg

func (a liteArgs) int(v int64) liteArgs   { return append(a, liteArg{kind: argInt, i: v}) }
func (a liteArgs) text(v string) liteArgs { return append(a, liteArg{kind: argText, s: v}) }
func (a liteArgs) null() liteArgs         { return append(a, liteArg{}) }

// blob appends v, or NULL when v is nil (an empty, non-nil v is an empty
// blob), as the driver binds a []byte.
func (a liteArgs) blob(v []byte) liteArgs {
	if v == nil {
		return a.null()
	}
	return append(a, liteArg{kind: argBlob, b: v})
}

// textOrNull appends *p, or NULL when p is nil.
func (a liteArgs) textOrNull(p *string) liteArgs {
	if p == nil {
		return a.null()
	}
	return a.text(*p)
}

// nonEmpty appends v, or NULL when v is empty.
func (a liteArgs) nonEmpty(v string) liteArgs {
	if v == "" {
		return a.null()
	}
	return a.text(v)
}

// bind binds args to every parameter of st.
func (c *liteConn) bind(q string, st liteStmt, args []liteArg) error {
	if len(args) != st.params {
		return fmt.Errorf("%q: %d arguments for %d parameters", q, len(args), st.params)
	}
	n := 0
	for i := range args {
		n += len(args[i].s) + len(args[i].b)
	}
	if n > c.bufN {
		size := max(n, 2*c.bufN)
		p := libc.Xrealloc(c.tls, c.buf, uint64(size))
		if p == 0 {
			return errors.New("sqlite: out of memory")
		}
		c.buf, c.bufN = p, size
	}
	buf := cmem(c.buf, c.bufN)
	off := 0
	for i := range args {
		a := &args[i]
		col := int32(i + 1)
		var rc int32
		switch a.kind {
		case argInt:
			rc = sqlite3.Xsqlite3_bind_int64(c.tls, st.p, col, a.i)
		case argText:
			copy(buf[off:], a.s)
			rc = sqlite3.Xsqlite3_bind_text(c.tls, st.p, col, c.buf+uintptr(off), int32(len(a.s)), 0)
			off += len(a.s)
		case argBlob:
			copy(buf[off:], a.b)
			rc = sqlite3.Xsqlite3_bind_blob(c.tls, st.p, col, c.buf+uintptr(off), int32(len(a.b)), 0)
			off += len(a.b)
		case argNull:
			rc = sqlite3.Xsqlite3_bind_null(c.tls, st.p, col)
		default:
			return fmt.Errorf("%q: argument %d has no kind %d", q, i+1, a.kind)
		}
		if rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("%q: binding argument %d: %w", q, i+1, c.err(rc))
		}
	}
	return nil
}

// exec runs q with args to its end.
func (c *liteConn) exec(ctx context.Context, q string, args ...liteArg) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := c.stmt(q)
	if err != nil {
		return err
	}
	if err := c.bind(q, st, args); err != nil {
		return err
	}
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, st.p); rc {
		case sqlite3.SQLITE_ROW:
			continue
		case sqlite3.SQLITE_DONE:
			sqlite3.Xsqlite3_reset(c.tls, st.p)
			return nil
		default:
			err := c.err(rc)
			sqlite3.Xsqlite3_reset(c.tls, st.p)
			return err
		}
	}
}

// queryInt64 runs q, which selects one integer column, and returns the
// first row's value; ok is false when there is no row.
func (c *liteConn) queryInt64(ctx context.Context, q string, args ...liteArg) (v int64, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	st, err := c.stmt(q)
	if err != nil {
		return 0, false, err
	}
	if err := c.bind(q, st, args); err != nil {
		return 0, false, err
	}
	defer sqlite3.Xsqlite3_reset(c.tls, st.p)
	switch rc := sqlite3.Xsqlite3_step(c.tls, st.p); rc {
	case sqlite3.SQLITE_DONE:
		return 0, false, nil
	case sqlite3.SQLITE_ROW:
		if t := sqlite3.Xsqlite3_column_type(c.tls, st.p, 0); t != sqlite3.SQLITE_INTEGER {
			return 0, false, fmt.Errorf("%q: an integer was expected, got column type %d", q, t)
		}
		return sqlite3.Xsqlite3_column_int64(c.tls, st.p, 0), true, nil
	default:
		return 0, false, c.err(rc)
	}
}

// close finalizes the statements and closes the connection.
func (c *liteConn) close() error {
	if c == nil || c.tls == nil {
		return nil
	}
	for _, st := range c.stmts {
		sqlite3.Xsqlite3_finalize(c.tls, st.p)
	}
	c.stmts = nil
	var err error
	if c.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			err = c.err(rc)
		}
		c.db = 0
	}
	if c.buf != 0 {
		libc.Xfree(c.tls, c.buf)
		c.buf, c.bufN = 0, 0
	}
	if c.cell != 0 {
		libc.Xfree(c.tls, c.cell)
		c.cell = 0
	}
	c.tls.Close()
	c.tls = nil
	return err
}
