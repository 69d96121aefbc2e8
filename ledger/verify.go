package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Err is nil when the report is OK, else an error naming the violations
// (the first ten).
func (r VerifyReport) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d invariant violations:", r.ViolationCount)
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(&b, "\n  … and %d more", r.ViolationCount-10)
			break
		}
		b.WriteString("\n  " + v.String())
	}
	return errors.New(b.String())
}

// Check runs Verify on a store and returns its violations as an error: the
// one-line form for tests and tools. A store that cannot be verified (it
// has no snapshot reads) is an error too.
func Check(ctx context.Context, st Store) error {
	vs, ok := st.(VerifyStore)
	if !ok {
		return fmt.Errorf("ledger: %T cannot be verified", st)
	}
	rep, err := Verify(ctx, vs, nil)
	if err != nil {
		return err
	}
	return rep.Err()
}
