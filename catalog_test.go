package credits_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/credits-dev/credits"
)

func TestDefaultCatalogValidate(t *testing.T) {
	c := credits.DefaultCatalog()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultCatalog().Validate() = %v", err)
	}
	wantOps := map[string]int64{"content_rewrite": 1, "section_generation": 10, "image_1k": 30, "image_2k": 60, "avatar_selection": 0}
	if len(c.Operations) != len(wantOps) {
		t.Errorf("%d operations, want %d", len(c.Operations), len(wantOps))
	}
	for id, cost := range wantOps {
		op, ok := c.Operation(id)
		if !ok || op.Cost != cost || op.Name == "" {
			t.Errorf("Operation(%q) = %+v, %v; want cost %d", id, op, ok, cost)
		}
	}
	wantPlans := []credits.Plan{
		{ID: "free", Name: "Free", MonthlyCredits: 250, PriceCents: 0, Currency: "usd"},
		{ID: "starter", Name: "Starter", MonthlyCredits: 1000, PriceCents: 4900, Currency: "usd"},
		{ID: "pro", Name: "Pro", MonthlyCredits: 5000, PriceCents: 7900, Currency: "usd"},
	}
	if !reflect.DeepEqual(c.Plans, wantPlans) {
		t.Errorf("plans = %+v, want %+v", c.Plans, wantPlans)
	}
	if _, ok := c.Operation("nope"); ok {
		t.Error(`Operation("nope") found`)
	}
	if _, ok := c.Plan("nope"); ok {
		t.Error(`Plan("nope") found`)
	}
}

func TestValidateFillsCurrency(t *testing.T) {
	c := credits.DefaultCatalog()
	for i := range c.Plans {
		c.Plans[i].Currency = ""
	}
	c.Plans[2].Currency = "eur"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	for i, want := range []string{"usd", "usd", "eur"} {
		if got := c.Plans[i].Currency; got != want {
			t.Errorf("plans[%d].currency = %q, want %q", i, got, want)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*credits.Catalog)
	}{
		{"one op one plan", func(c *credits.Catalog) { c.Operations = c.Operations[:1]; c.Plans = c.Plans[:1] }},
		{"id of 64 chars", func(c *credits.Catalog) { c.Operations[0].ID = strings.Repeat("a", 64) }},
		{"id digits and underscore", func(c *credits.Catalog) { c.Plans[0].ID = "plan_2024_v1" }},
		{"zero cost", func(c *credits.Catalog) { c.Operations[0].Cost = 0 }},
		{"max cost", func(c *credits.Catalog) { c.Operations[0].Cost = credits.MaxCost }},
		{"zero credit plan", func(c *credits.Catalog) { c.Plans[0].MonthlyCredits = 0 }},
		{"empty description", func(c *credits.Catalog) { c.Operations[1].Description = "" }},
		{"op and plan share an id", func(c *credits.Catalog) { c.Operations[0].ID = "free" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := credits.DefaultCatalog()
			tc.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*credits.Catalog)
		field  string
	}{
		{"no operations", func(c *credits.Catalog) { c.Operations = nil }, "operations"},
		{"empty operations", func(c *credits.Catalog) { c.Operations = []credits.Operation{} }, "operations"},
		{"no plans", func(c *credits.Catalog) { c.Plans = nil }, "plans"},
		{"op id empty", func(c *credits.Catalog) { c.Operations[0].ID = "" }, "operations[0].id"},
		{"op id uppercase", func(c *credits.Catalog) { c.Operations[1].ID = "Image_1k" }, "operations[1].id"},
		{"op id dash", func(c *credits.Catalog) { c.Operations[2].ID = "image-1k" }, "operations[2].id"},
		{"op id space", func(c *credits.Catalog) { c.Operations[3].ID = "image 2k" }, "operations[3].id"},
		{"op id 65 chars", func(c *credits.Catalog) { c.Operations[4].ID = strings.Repeat("a", 65) }, "operations[4].id"},
		{"op id trailing newline", func(c *credits.Catalog) { c.Operations[0].ID = "content_rewrite\n" }, "operations[0].id"},
		{"op id non-ascii", func(c *credits.Catalog) { c.Operations[0].ID = "réécrire" }, "operations[0].id"},
		{"op duplicate", func(c *credits.Catalog) { c.Operations[3].ID = c.Operations[1].ID }, "operations[3].id"},
		{"op empty name", func(c *credits.Catalog) { c.Operations[2].Name = "" }, "operations[2].name"},
		{"op negative cost", func(c *credits.Catalog) { c.Operations[1].Cost = -1 }, "operations[1].cost"},
		{"op cost too large", func(c *credits.Catalog) { c.Operations[1].Cost = credits.MaxCost + 1 }, "operations[1].cost"},
		{"plan id empty", func(c *credits.Catalog) { c.Plans[0].ID = "" }, "plans[0].id"},
		{"plan id uppercase", func(c *credits.Catalog) { c.Plans[1].ID = "Starter" }, "plans[1].id"},
		{"plan duplicate", func(c *credits.Catalog) { c.Plans[2].ID = "free" }, "plans[2].id"},
		{"plan empty name", func(c *credits.Catalog) { c.Plans[1].Name = "" }, "plans[1].name"},
		{"plan negative credits", func(c *credits.Catalog) { c.Plans[0].MonthlyCredits = -1 }, "plans[0].monthly_credits"},
		{"plan negative price", func(c *credits.Catalog) { c.Plans[2].PriceCents = -1 }, "plans[2].price_cents"},
		{"plans not ascending", func(c *credits.Catalog) { c.Plans[1], c.Plans[2] = c.Plans[2], c.Plans[1] }, "plans[2].monthly_credits"},
		{"plans descending", func(c *credits.Catalog) {
			c.Plans[0], c.Plans[2] = c.Plans[2], c.Plans[0]
		}, "plans[1].monthly_credits"},
		{"first error wins", func(c *credits.Catalog) { c.Operations[1].Name = ""; c.Plans[0].ID = "" }, "operations[1].name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := credits.DefaultCatalog()
			tc.mutate(&c)
			err := c.Validate()
			e := credits.AsError(err)
			if e == nil {
				t.Fatalf("Validate() = %v, want *credits.Error", err)
			}
			if e.Code != credits.CodeInvalidRequest || e.Field != tc.field || e.Message == "" {
				t.Errorf("Validate() = code %q field %q msg %q, want code %q field %q",
					e.Code, e.Field, e.Message, credits.CodeInvalidRequest, tc.field)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestEstimate(t *testing.T) {
	fits := func(free, starter, pro bool) []credits.PlanFit {
		return []credits.PlanFit{
			{ID: "free", Name: "Free", MonthlyCredits: 250, PriceCents: 0, Fits: free},
			{ID: "starter", Name: "Starter", MonthlyCredits: 1000, PriceCents: 4900, Fits: starter},
			{ID: "pro", Name: "Pro", MonthlyCredits: 5000, PriceCents: 7900, Fits: pro},
		}
	}
	tests := []struct {
		name      string
		items     []credits.EstimateItem
		total     int64
		breakdown []credits.EstimateLine
		plans     []credits.PlanFit
		smallest  *string
	}{
		{
			name:  "seed example 205 free",
			items: []credits.EstimateItem{{"section_generation", 10}, {"content_rewrite", 15}, {"image_1k", 3}},
			total: 205,
			breakdown: []credits.EstimateLine{
				{Operation: "section_generation", Count: 10, Cost: 10, Subtotal: 100},
				{Operation: "content_rewrite", Count: 15, Cost: 1, Subtotal: 15},
				{Operation: "image_1k", Count: 3, Cost: 30, Subtotal: 90},
			},
			plans:    fits(true, true, true),
			smallest: ptr("free"),
		},
		{
			name:  "770 starter",
			items: []credits.EstimateItem{{"section_generation", 30}, {"content_rewrite", 50}, {"image_1k", 10}, {"image_2k", 2}},
			total: 770,
			breakdown: []credits.EstimateLine{
				{Operation: "section_generation", Count: 30, Cost: 10, Subtotal: 300},
				{Operation: "content_rewrite", Count: 50, Cost: 1, Subtotal: 50},
				{Operation: "image_1k", Count: 10, Cost: 30, Subtotal: 300},
				{Operation: "image_2k", Count: 2, Cost: 60, Subtotal: 120},
			},
			plans:    fits(false, true, true),
			smallest: ptr("starter"),
		},
		{
			name:      "over the largest plan",
			items:     []credits.EstimateItem{{"image_2k", 84}},
			total:     5040,
			breakdown: []credits.EstimateLine{{Operation: "image_2k", Count: 84, Cost: 60, Subtotal: 5040}},
			plans:     fits(false, false, false),
			smallest:  nil,
		},
		{
			name:      "exactly 250 fits free",
			items:     []credits.EstimateItem{{"content_rewrite", 250}},
			total:     250,
			breakdown: []credits.EstimateLine{{Operation: "content_rewrite", Count: 250, Cost: 1, Subtotal: 250}},
			plans:     fits(true, true, true),
			smallest:  ptr("free"),
		},
		{
			name:      "251 needs starter",
			items:     []credits.EstimateItem{{"content_rewrite", 251}},
			total:     251,
			breakdown: []credits.EstimateLine{{Operation: "content_rewrite", Count: 251, Cost: 1, Subtotal: 251}},
			plans:     fits(false, true, true),
			smallest:  ptr("starter"),
		},
		{
			name:      "exactly 5000 fits pro",
			items:     []credits.EstimateItem{{"section_generation", 500}},
			total:     5000,
			breakdown: []credits.EstimateLine{{Operation: "section_generation", Count: 500, Cost: 10, Subtotal: 5000}},
			plans:     fits(false, false, true),
			smallest:  ptr("pro"),
		},
		{
			name:  "zero cost and zero count",
			items: []credits.EstimateItem{{"avatar_selection", 7}, {"image_2k", 0}},
			total: 0,
			breakdown: []credits.EstimateLine{
				{Operation: "avatar_selection", Count: 7, Cost: 0, Subtotal: 0},
				{Operation: "image_2k", Count: 0, Cost: 60, Subtotal: 0},
			},
			plans:    fits(true, true, true),
			smallest: ptr("free"),
		},
		{
			name:  "same operation twice",
			items: []credits.EstimateItem{{"image_1k", 5}, {"image_1k", 4}},
			total: 270,
			breakdown: []credits.EstimateLine{
				{Operation: "image_1k", Count: 5, Cost: 30, Subtotal: 150},
				{Operation: "image_1k", Count: 4, Cost: 30, Subtotal: 120},
			},
			plans:    fits(false, true, true),
			smallest: ptr("starter"),
		},
		{
			name:      "max count",
			items:     []credits.EstimateItem{{"image_2k", credits.MaxCount}},
			total:     60 * credits.MaxCount,
			breakdown: []credits.EstimateLine{{Operation: "image_2k", Count: credits.MaxCount, Cost: 60, Subtotal: 60 * credits.MaxCount}},
			plans:     fits(false, false, false),
			smallest:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := credits.DefaultCatalog()
			est, err := c.Estimate(tc.items)
			if err != nil {
				t.Fatalf("Estimate() error %v", err)
			}
			if est.Total != tc.total {
				t.Errorf("total = %d, want %d", est.Total, tc.total)
			}
			if !reflect.DeepEqual(est.Breakdown, tc.breakdown) {
				t.Errorf("breakdown = %+v, want %+v", est.Breakdown, tc.breakdown)
			}
			if !reflect.DeepEqual(est.Plans, tc.plans) {
				t.Errorf("plans = %+v, want %+v", est.Plans, tc.plans)
			}
			if !reflect.DeepEqual(est.SmallestPlan, tc.smallest) {
				t.Errorf("smallest plan = %v, want %v", deref(est.SmallestPlan), deref(tc.smallest))
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestEstimateCustomCatalogSmallestPlanFirstFit(t *testing.T) {
	// The first plan (in list order) that covers the total wins.
	c := credits.Catalog{
		Operations: []credits.Operation{{ID: "op", Name: "Op", Cost: 7}},
		Plans: []credits.Plan{
			{ID: "zero", Name: "Zero", MonthlyCredits: 0},
			{ID: "a", Name: "A", MonthlyCredits: 70, PriceCents: 100},
			{ID: "b", Name: "B", MonthlyCredits: 70, PriceCents: 50},
		},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	est, err := c.Estimate([]credits.EstimateItem{{"op", 10}})
	if err != nil {
		t.Fatal(err)
	}
	if est.Total != 70 || deref(est.SmallestPlan) != "a" {
		t.Errorf("total %d smallest %s, want 70 a", est.Total, deref(est.SmallestPlan))
	}
	est, err = c.Estimate([]credits.EstimateItem{{"op", 0}})
	if err != nil {
		t.Fatal(err)
	}
	if deref(est.SmallestPlan) != "zero" {
		t.Errorf("smallest %s, want zero", deref(est.SmallestPlan))
	}
}

func TestEstimateRejects(t *testing.T) {
	tooMany := make([]credits.EstimateItem, credits.MaxEstimateItems+1)
	for i := range tooMany {
		tooMany[i] = credits.EstimateItem{Operation: "content_rewrite", Count: 1}
	}
	tests := []struct {
		name  string
		items []credits.EstimateItem
		field string
	}{
		{"nil items", nil, "items"},
		{"empty items", []credits.EstimateItem{}, "items"},
		{"too many items", tooMany, "items"},
		{"unknown operation first", []credits.EstimateItem{{"nope", 1}}, "items[0].operation"},
		{"unknown operation third", []credits.EstimateItem{{"image_1k", 1}, {"image_2k", 1}, {"image_3k", 1}}, "items[2].operation"},
		{"empty operation", []credits.EstimateItem{{"content_rewrite", 1}, {"", 1}}, "items[1].operation"},
		{"operation case matters", []credits.EstimateItem{{"Image_1k", 1}}, "items[0].operation"},
		{"negative count", []credits.EstimateItem{{"image_1k", 1}, {"image_2k", -1}}, "items[1].count"},
		{"count too large", []credits.EstimateItem{{"image_1k", credits.MaxCount + 1}}, "items[0].count"},
		{"first bad item wins", []credits.EstimateItem{{"image_1k", -5}, {"nope", 1}}, "items[0].count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := credits.DefaultCatalog()
			est, err := c.Estimate(tc.items)
			e := credits.AsError(err)
			if e == nil {
				t.Fatalf("Estimate() = %+v, %v; want *credits.Error", est, err)
			}
			if e.Code != credits.CodeInvalidRequest || e.Field != tc.field {
				t.Errorf("error code %q field %q, want %q %q", e.Code, e.Field, credits.CodeInvalidRequest, tc.field)
			}
			if !reflect.DeepEqual(est, credits.Estimate{}) {
				t.Errorf("estimate with error = %+v, want zero", est)
			}
		})
	}
}

func TestEstimateMaxItemsAccepted(t *testing.T) {
	items := make([]credits.EstimateItem, credits.MaxEstimateItems)
	for i := range items {
		items[i] = credits.EstimateItem{Operation: "section_generation", Count: 1}
	}
	c := credits.DefaultCatalog()
	est, err := c.Estimate(items)
	if err != nil {
		t.Fatal(err)
	}
	if est.Total != 10*credits.MaxEstimateItems || len(est.Breakdown) != credits.MaxEstimateItems {
		t.Errorf("total %d lines %d", est.Total, len(est.Breakdown))
	}
}

func TestUpgradeFor(t *testing.T) {
	def := credits.DefaultCatalog()
	// A catalog where a bigger plan is cheaper than a smaller one.
	odd := credits.Catalog{
		Operations: []credits.Operation{{ID: "op", Name: "Op", Cost: 1}},
		Plans: []credits.Plan{
			{ID: "a", Name: "A", MonthlyCredits: 100, PriceCents: 0},
			{ID: "b", Name: "B", MonthlyCredits: 500, PriceCents: 3000},
			{ID: "c", Name: "C", MonthlyCredits: 1000, PriceCents: 2000},
			{ID: "d", Name: "D", MonthlyCredits: 2000, PriceCents: 9000},
			{ID: "e", Name: "E", MonthlyCredits: 3000, PriceCents: 2500},
		},
	}
	if err := odd.Validate(); err != nil {
		t.Fatal(err)
	}
	up := func(plan string, mc, price int64) *credits.Upgrade {
		return &credits.Upgrade{Plan: plan, MonthlyCredits: mc, PriceCents: price}
	}
	starter, pro := up("starter", 1000, 4900), up("pro", 5000, 7900)
	tests := []struct {
		name      string
		cat       credits.Catalog
		current   string
		available int64
		required  int64
		want      *credits.Upgrade
	}{
		{"free 45 needs 60", def, "free", 45, 60, starter},
		{"free 0 needs 750 (starter exactly)", def, "free", 0, 750, starter},
		{"free 0 needs 751", def, "free", 0, 751, pro},
		{"free 0 needs 2000", def, "free", 0, 2000, pro},
		{"free 0 needs 4750 (pro exactly)", def, "free", 0, 4750, pro},
		{"free 0 needs 6000: none covers, largest", def, "free", 0, 6000, pro},
		{"starter 10 needs 500", def, "starter", 10, 500, pro},
		{"starter 10 needs 10000: largest", def, "starter", 10, 10000, pro},
		{"pro: already largest", def, "pro", 0, 10000, nil},
		{"pro with credits left: still nil", def, "pro", 100, 200, nil},

		{"odd a needs 400: c cheaper than b", odd, "a", 0, 400, up("c", 1000, 2000)},
		{"odd a needs 1500: e cheaper than d", odd, "a", 0, 1500, up("e", 3000, 2500)},
		{"odd a needs 2800: only e", odd, "a", 100, 2800, up("e", 3000, 2500)},
		{"odd a needs 9999: largest", odd, "a", 0, 9999, up("e", 3000, 2500)},
		{"odd b needs 300", odd, "b", 0, 300, up("c", 1000, 2000)},
		{"odd c needs 900: d or e, e cheaper", odd, "c", 0, 900, up("e", 3000, 2500)},
		{"odd d needs 1", odd, "d", 0, 1, up("e", 3000, 2500)},
		{"odd e: largest", odd, "e", 0, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cat.UpgradeFor(tc.current, tc.available, tc.required)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("UpgradeFor(%q, %d, %d) = %+v, want %+v", tc.current, tc.available, tc.required, got, tc.want)
			}
		})
	}
}

func TestIsUpgrade(t *testing.T) {
	c := credits.DefaultCatalog()
	tests := []struct {
		a, b string
		want bool
	}{
		{"free", "starter", true},
		{"free", "pro", true},
		{"starter", "pro", true},
		{"pro", "free", false},
		{"starter", "free", false},
		{"free", "free", false},
	}
	for _, tc := range tests {
		if got := c.IsUpgrade(tc.a, tc.b); got != tc.want {
			t.Errorf("IsUpgrade(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	inv := credits.Invalid("items[0].count", "count must be %s", "positive")
	conf := credits.Errorf(credits.CodeConflict, "workspace %q exists", "w1")
	nf := credits.NotFound("workspace", "w9")
	foreign := errors.New("disk on fire")

	tests := []struct {
		name    string
		err     error
		code    string
		asError *credits.Error
	}{
		{"nil", nil, "", nil},
		{"foreign", foreign, credits.CodeInternal, nil},
		{"foreign wrapped", fmt.Errorf("ctx: %w", foreign), credits.CodeInternal, nil},
		{"invalid", inv, credits.CodeInvalidRequest, inv},
		{"errorf", conf, credits.CodeConflict, conf},
		{"not found", nf, credits.CodeNotFound, nf},
		{"wrapped once", fmt.Errorf("store: %w", conf), credits.CodeConflict, conf},
		{"wrapped twice", fmt.Errorf("http: %w", fmt.Errorf("store: %w", inv)), credits.CodeInvalidRequest, inv},
		{"joined", errors.Join(foreign, nf), credits.CodeNotFound, nf},
		{"%v does not wrap", fmt.Errorf("store: %v", conf), credits.CodeInternal, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := credits.ErrorCode(tc.err); got != tc.code {
				t.Errorf("ErrorCode = %q, want %q", got, tc.code)
			}
			if got := credits.AsError(tc.err); got != tc.asError {
				t.Errorf("AsError = %v, want %v", got, tc.asError)
			}
		})
	}

	msgs := []struct {
		e                   *credits.Error
		code, field, msg, s string
	}{
		{inv, credits.CodeInvalidRequest, "items[0].count", "count must be positive", "invalid_request: items[0].count: count must be positive"},
		{conf, credits.CodeConflict, "", `workspace "w1" exists`, `conflict: workspace "w1" exists`},
		{nf, credits.CodeNotFound, "", `no workspace "w9"`, `not_found: no workspace "w9"`},
		{credits.Errorf(credits.CodeUnavailable, "store down"), credits.CodeUnavailable, "", "store down", "unavailable: store down"},
	}
	for _, m := range msgs {
		if m.e.Code != m.code || m.e.Field != m.field || m.e.Message != m.msg || m.e.Insufficient != nil {
			t.Errorf("%#v: want code %q field %q message %q", m.e, m.code, m.field, m.msg)
		}
		if got := m.e.Error(); got != m.s {
			t.Errorf("Error() = %q, want %q", got, m.s)
		}
	}
}
