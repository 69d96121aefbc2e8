package credits

import (
	"fmt"
	"math"
	"regexp"
)

// Operation is a priced AI operation. Cost is whole credits per unit.
type Operation struct {
	ID          string `json:"id" yaml:"id"`
	Name        string `json:"name" yaml:"name"`
	Cost        int64  `json:"cost" yaml:"cost"`
	Description string `json:"description" yaml:"description"`
}

// Plan grants MonthlyCredits at each cycle start.
type Plan struct {
	ID             string `json:"id" yaml:"id"`
	Name           string `json:"name" yaml:"name"`
	MonthlyCredits int64  `json:"monthly_credits" yaml:"monthly_credits"`
	PriceCents     int64  `json:"price_cents" yaml:"price_cents"`
	Currency       string `json:"currency" yaml:"currency"`
}

// Catalog is the priced operations and the plans, smallest plan first.
type Catalog struct {
	Operations []Operation `json:"operations" yaml:"operations"`
	Plans      []Plan      `json:"plans" yaml:"plans"`
}

// DefaultCatalog is the built-in catalog of the contract.
func DefaultCatalog() Catalog {
	return Catalog{
		Operations: []Operation{
			{ID: "content_rewrite", Name: "Content rewriting", Cost: 1, Description: "Rewrite a text field using the AI chatbox"},
			{ID: "section_generation", Name: "Section content generation", Cost: 10, Description: "Generate the text of a page section"},
			{ID: "image_1k", Name: "Image generation (1K, 1024x1024)", Cost: 30, Description: "Generate a 1024x1024 image"},
			{ID: "image_2k", Name: "Image generation (2K, 2048x2048)", Cost: 60, Description: "Generate a 2048x2048 image"},
			{ID: "avatar_selection", Name: "Avatar selection from the built-in library", Cost: 0, Description: "Pick an avatar from the built-in library"},
		},
		Plans: []Plan{
			{ID: "free", Name: "Free", MonthlyCredits: 250, PriceCents: 0, Currency: "usd"},
			{ID: "starter", Name: "Starter", MonthlyCredits: 1000, PriceCents: 4900, Currency: "usd"},
			{ID: "pro", Name: "Pro", MonthlyCredits: 5000, PriceCents: 7900, Currency: "usd"},
		},
	}
}

var idPattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// Validate checks the catalog's rules and fills defaults (currency "usd").
// The error names the entry and the field.
func (c *Catalog) Validate() error {
	if len(c.Operations) == 0 {
		return Invalid("operations", "at least one operation is required")
	}
	if len(c.Plans) == 0 {
		return Invalid("plans", "at least one plan is required")
	}
	seen := map[string]bool{}
	for i, op := range c.Operations {
		at := fmt.Sprintf("operations[%d]", i)
		switch {
		case !idPattern.MatchString(op.ID):
			return Invalid(at+".id", "id %q must match [a-z0-9_]{1,64}", op.ID)
		case seen[op.ID]:
			return Invalid(at+".id", "duplicate operation id %q", op.ID)
		case op.Name == "":
			return Invalid(at+".name", "name is required (operation %q)", op.ID)
		case op.Cost < 0 || op.Cost > MaxCost:
			return Invalid(at+".cost", "cost must be an integer from 0 to %d (operation %q)", MaxCost, op.ID)
		}
		seen[op.ID] = true
	}
	seen = map[string]bool{}
	for i := range c.Plans {
		p := &c.Plans[i]
		at := fmt.Sprintf("plans[%d]", i)
		if p.Currency == "" {
			p.Currency = "usd"
		}
		switch {
		case !idPattern.MatchString(p.ID):
			return Invalid(at+".id", "id %q must match [a-z0-9_]{1,64}", p.ID)
		case seen[p.ID]:
			return Invalid(at+".id", "duplicate plan id %q", p.ID)
		case p.Name == "":
			return Invalid(at+".name", "name is required (plan %q)", p.ID)
		case p.MonthlyCredits < 0 || p.MonthlyCredits > MaxCost:
			return Invalid(at+".monthly_credits", "monthly_credits must be an integer from 0 to %d (plan %q)", MaxCost, p.ID)
		case p.PriceCents < 0:
			return Invalid(at+".price_cents", "price_cents must be an integer >= 0 (plan %q)", p.ID)
		case i > 0 && p.MonthlyCredits < c.Plans[i-1].MonthlyCredits:
			return Invalid(at+".monthly_credits", "plans must be listed in ascending monthly_credits (plan %q has fewer than %q)", p.ID, c.Plans[i-1].ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// Operation returns the operation with id.
func (c *Catalog) Operation(id string) (Operation, bool) {
	for _, op := range c.Operations {
		if op.ID == id {
			return op, true
		}
	}
	return Operation{}, false
}

// Plan returns the plan with id.
func (c *Catalog) Plan(id string) (Plan, bool) {
	for _, p := range c.Plans {
		if p.ID == id {
			return p, true
		}
	}
	return Plan{}, false
}

// planIndex is the position of a plan in the ascending list, or -1.
func (c *Catalog) planIndex(id string) int {
	for i, p := range c.Plans {
		if p.ID == id {
			return i
		}
	}
	return -1
}

// IsUpgrade reports whether moving from plan a to plan b grants more credits.
func (c *Catalog) IsUpgrade(a, b string) bool {
	pa, _ := c.Plan(a)
	pb, _ := c.Plan(b)
	return pb.MonthlyCredits > pa.MonthlyCredits
}

// UpgradeFor suggests a plan for a workspace on plan current with available
// credits that needs required: the cheapest higher plan whose upgrade (which
// adds the difference in monthly credits at once) would cover it, else the
// largest plan, or nil when current is already the largest.
func (c *Catalog) UpgradeFor(current string, available, required int64) *Upgrade {
	cur, _ := c.Plan(current)
	i := c.planIndex(current)
	last := c.Plans[len(c.Plans)-1]
	if i == len(c.Plans)-1 {
		return nil
	}
	var best *Plan
	for j := i + 1; j < len(c.Plans); j++ {
		p := &c.Plans[j]
		if p.MonthlyCredits <= cur.MonthlyCredits {
			continue
		}
		if available+p.MonthlyCredits-cur.MonthlyCredits >= required && (best == nil || p.PriceCents < best.PriceCents) {
			best = p
		}
	}
	if best == nil {
		if last.MonthlyCredits <= cur.MonthlyCredits {
			return nil // no plan grants more
		}
		best = &last
	}
	return &Upgrade{Plan: best.ID, MonthlyCredits: best.MonthlyCredits, PriceCents: best.PriceCents}
}

// EstimateItem is one line of work to price.
type EstimateItem struct {
	Operation string `json:"operation"`
	Count     int64  `json:"count"`
}

// EstimateLine is a priced item.
type EstimateLine struct {
	Operation string `json:"operation"`
	Count     int64  `json:"count"`
	Cost      int64  `json:"cost"`
	Subtotal  int64  `json:"subtotal"`
}

// PlanFit says whether a plan's monthly credits cover an estimate.
type PlanFit struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	MonthlyCredits int64  `json:"monthly_credits"`
	PriceCents     int64  `json:"price_cents"`
	Fits           bool   `json:"fits"`
}

// Estimate answers "which plan fits this much work".
type Estimate struct {
	Total        int64          `json:"total"`
	Breakdown    []EstimateLine `json:"breakdown"`
	Plans        []PlanFit      `json:"plans"`
	SmallestPlan *string        `json:"smallest_plan"`
}

// Estimate prices items and finds the smallest plan whose monthly credits
// cover the total.
func (c *Catalog) Estimate(items []EstimateItem) (Estimate, error) {
	if len(items) == 0 {
		return Estimate{}, Invalid("items", "at least one item is required")
	}
	if len(items) > MaxEstimateItems {
		return Estimate{}, Invalid("items", "at most %d items", MaxEstimateItems)
	}
	est := Estimate{Breakdown: make([]EstimateLine, 0, len(items)), Plans: make([]PlanFit, 0, len(c.Plans))}
	for i, it := range items {
		op, ok := c.Operation(it.Operation)
		if !ok {
			return Estimate{}, Invalid(fmt.Sprintf("items[%d].operation", i), "unknown operation %q", it.Operation)
		}
		if it.Count < 0 || it.Count > MaxCount {
			return Estimate{}, Invalid(fmt.Sprintf("items[%d].count", i), "count must be an integer from 0 to %d", MaxCount)
		}
		sub := op.Cost * it.Count // both ≤ 1e9: no overflow
		if est.Total > math.MaxInt64-sub {
			return Estimate{}, Invalid("items", "the total is too large to price")
		}
		est.Breakdown = append(est.Breakdown, EstimateLine{Operation: op.ID, Count: it.Count, Cost: op.Cost, Subtotal: sub})
		est.Total += sub
	}
	for _, p := range c.Plans {
		fits := p.MonthlyCredits >= est.Total
		est.Plans = append(est.Plans, PlanFit{ID: p.ID, Name: p.Name, MonthlyCredits: p.MonthlyCredits, PriceCents: p.PriceCents, Fits: fits})
		if fits && est.SmallestPlan == nil {
			id := p.ID
			est.SmallestPlan = &id
		}
	}
	return est, nil
}
