package ledger

import (
	"context"
	"fmt"
	"strings"
)

// VerifyWorkspace checks a workspace's invariants from what is committed: its
// current cycle adds up, every ledger entry's available_after is the running
// sum since its cycle's grant, and that sum ends at available. It returns nil
// or an error naming each violation.
func VerifyWorkspace(ctx context.Context, st Store, workspaceID string) error {
	a, err := st.Account(ctx, workspaceID)
	if err != nil {
		return err
	}
	var problems []string
	if !a.Cycle.Balanced() {
		c := a.Cycle
		problems = append(problems, fmt.Sprintf("cycle %d: available %d + held %d + used %d + expired %d != granted %d",
			c.N, c.Available, c.Held, c.Used, c.Expired, c.Granted))
	}
	// Read the whole ledger, oldest first.
	var all []entryView
	var before int64
	for {
		page, err := st.Entries(ctx, workspaceID, before, 500)
		if err != nil {
			return err
		}
		for _, e := range page {
			all = append(all, entryView{e.ID, e.Type, e.Amount, e.AvailableAfter})
		}
		if len(page) < 500 {
			break
		}
		before = page[len(page)-1].Seq
	}
	var sum int64
	granted := false
	for i := len(all) - 1; i >= 0; i-- {
		e := all[i]
		if e.typ == "grant" {
			sum, granted = e.amount, true
		} else {
			sum += e.amount
		}
		if e.after != sum {
			problems = append(problems, fmt.Sprintf("entry %s (%s %d): available_after %d, running sum %d", e.id, e.typ, e.amount, e.after, sum))
		}
	}
	if !granted {
		problems = append(problems, "no grant in the ledger")
	}
	if sum != a.Cycle.Available {
		problems = append(problems, fmt.Sprintf("ledger running sum %d != available %d", sum, a.Cycle.Available))
	}
	if len(problems) > 0 {
		return fmt.Errorf("workspace %s: %s", workspaceID, strings.Join(problems, "; "))
	}
	return nil
}

type entryView struct {
	id, typ       string
	amount, after int64
}
