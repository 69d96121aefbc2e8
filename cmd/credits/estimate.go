package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

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
		return err
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
			return usageError{e.Message + known(cat, e)}
		}
		return err
	}
	return printEstimate(c.Stdout, cat, est)
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OPERATION\tCOUNT\tCOST\tSUBTOTAL\t")
	for _, l := range est.Breakdown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", l.Operation, group(l.Count), group(l.Cost), group(l.Subtotal))
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%s\t\n", group(est.Total))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PLAN\tCREDITS/MONTH\tPRICE/MONTH\tFITS\t")
	for _, p := range est.Plans {
		pl, _ := cat.Plan(p.ID)
		fits := "no"
		if p.Fits {
			fits = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", p.Name, group(p.MonthlyCredits), money(p.PriceCents, pl.Currency), fits)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if est.SmallestPlan == nil {
		last := cat.Plans[len(cat.Plans)-1]
		_, err := fmt.Fprintf(w, "Smallest plan: none: %s credits is more than %s gives (%s credits/month)\n", group(est.Total), last.Name, group(last.MonthlyCredits))
		return err
	}
	p, _ := cat.Plan(*est.SmallestPlan)
	_, err := fmt.Fprintf(w, "Smallest plan: %s (%s credits/month, %s/month)\n", p.Name, group(p.MonthlyCredits), money(p.PriceCents, p.Currency))
	return err
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
