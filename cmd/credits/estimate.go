package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/credits-dev/credits"
	"github.com/credits-dev/credits/config"
)

// EstimateCommand prices work from the command line, offline.
type EstimateCommand struct {
	Stdout io.Writer
}

// Run parses OPERATION=COUNT arguments and prints the breakdown, the total
// and the smallest plan that fits.
func (c *EstimateCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("credits estimate", flag.ContinueOnError)
	cfg := fs.String("config", os.Getenv("CREDITS_CONFIG"), "YAML catalog replacing the built-in one (CREDITS_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: credits estimate [--config FILE] OPERATION=COUNT ...\n\nexample: credits estimate section_generation=10 content_rewrite=15 image_1k=3")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	cat := credits.DefaultCatalog()
	if *cfg != "" {
		var err error
		if cat, err = config.Load(*cfg); err != nil {
			return err
		}
	}
	if fs.NArg() == 0 {
		return usageError{"estimate needs at least one OPERATION=COUNT, like section_generation=10"}
	}
	items := make([]credits.EstimateItem, 0, fs.NArg())
	for _, a := range fs.Args() {
		op, n, ok := strings.Cut(a, "=")
		count, err := strconv.ParseInt(n, 10, 64)
		if !ok || op == "" || err != nil {
			return usageError{fmt.Sprintf("%q: write OPERATION=COUNT, like image_1k=3", a)}
		}
		items = append(items, credits.EstimateItem{Operation: op, Count: count})
	}
	est, err := cat.Estimate(items)
	if err != nil {
		if e := credits.AsError(err); e != nil {
			return usageError{argName(fs.Args(), e) + e.Message + known(cat, e)}
		}
		return err
	}
	return printEstimate(c.Stdout, cat, est)
}

// argName prefixes a message about items[i] with the argument it came from.
func argName(args []string, e *credits.Error) string {
	var i int
	if _, err := fmt.Sscanf(e.Field, "items[%d]", &i); err != nil || i < 0 || i >= len(args) {
		return ""
	}
	return strconv.Quote(args[i]) + ": "
}

func known(cat credits.Catalog, e *credits.Error) string {
	if !strings.HasSuffix(e.Field, ".operation") {
		return ""
	}
	ids := make([]string, len(cat.Operations))
	for i, op := range cat.Operations {
		ids[i] = op.ID
	}
	return " (known: " + strings.Join(ids, ", ") + ")"
}

func printEstimate(w io.Writer, cat credits.Catalog, est credits.Estimate) error {
	ops := table{align: []bool{false, true, true, true}}
	ops.row("OPERATION", "COUNT", "COST", "SUBTOTAL")
	for _, l := range est.Breakdown {
		ops.row(l.Operation, group(l.Count), group(l.Cost), group(l.Subtotal))
	}
	ops.row("TOTAL", "", "", group(est.Total))
	plans := table{align: []bool{false, true, true, false}}
	plans.row("PLAN", "CREDITS/MONTH", "PRICE/MONTH", "FITS")
	for _, p := range est.Plans {
		pl, _ := cat.Plan(p.ID)
		fits := "no"
		if p.Fits {
			fits = "yes"
		}
		plans.row(p.Name, group(p.MonthlyCredits), money(p.PriceCents, pl.Currency), fits)
	}
	var b strings.Builder
	ops.write(&b)
	b.WriteString("\n")
	plans.write(&b)
	b.WriteString("\n")
	if est.SmallestPlan == nil {
		last := cat.Plans[len(cat.Plans)-1]
		fmt.Fprintf(&b, "Smallest plan: none: %s credits is more than %s gives (%s credits/month)\n", group(est.Total), last.Name, group(last.MonthlyCredits))
	} else {
		p, _ := cat.Plan(*est.SmallestPlan)
		fmt.Fprintf(&b, "Smallest plan: %s (%s credits/month, %s/month)\n", p.Name, group(p.MonthlyCredits), money(p.PriceCents, p.Currency))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table lays out columns two spaces apart: text left-aligned, numbers
// right-aligned (align[i] true), with no trailing blanks.
type table struct {
	align []bool
	rows  [][]string
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.align))
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range t.rows {
		var line strings.Builder
		for i, c := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if t.align[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteString("\n")
	}
}

// group writes an integer with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func money(cents int64, currency string) string {
	if strings.EqualFold(currency, "usd") {
		return fmt.Sprintf("$%s.%02d", group(cents/100), cents%100)
	}
	return fmt.Sprintf("%s.%02d %s", group(cents/100), cents%100, strings.ToUpper(currency))
}
