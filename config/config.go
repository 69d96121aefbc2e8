// Package config loads the YAML catalog that replaces the built-in one.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/credits-dev/credits"
)

// The file's shape. Required strings are pointers and required integers are
// yaml.Nodes so that a missing or null field is told apart from "" or 0, and
// a float or a string number gets our message rather than yaml's.
type catalogFile struct {
	Operations []operationEntry `yaml:"operations"`
	Plans      []planEntry      `yaml:"plans"`
}

type operationEntry struct {
	ID          *string   `yaml:"id"`
	Name        *string   `yaml:"name"`
	Cost        yaml.Node `yaml:"cost"`
	Description string    `yaml:"description"`
}

type planEntry struct {
	ID             *string   `yaml:"id"`
	Name           *string   `yaml:"name"`
	MonthlyCredits yaml.Node `yaml:"monthly_credits"`
	PriceCents     yaml.Node `yaml:"price_cents"`
	Currency       string    `yaml:"currency"`
}

// Load reads the catalog file at path. Every error names the file, and those
// about an entry name the entry and the field.
func Load(path string) (credits.Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return credits.Catalog{}, err
	}
	f, err := decode(data)
	if err != nil {
		return credits.Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	cat, err := f.catalog()
	if err != nil {
		return credits.Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := cat.Validate(); err != nil {
		if e := credits.AsError(err); e != nil && e.Field != "" {
			return credits.Catalog{}, &fileError{path: path, err: e}
		}
		return credits.Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	return cat, nil
}

// decode parses data as one YAML document holding a mapping, rejecting
// unknown keys at any level.
func decode(data []byte) (catalogFile, error) {
	// A first pass as a plain node tells an empty or non-mapping file apart,
	// which decoding into a struct would accept ("~") or word obscurely.
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return catalogFile{}, errors.New("file is empty")
	} else if err != nil {
		return catalogFile{}, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return catalogFile{}, fmt.Errorf("line %d: must be a mapping with operations and plans", doc.Line)
	}
	var rest yaml.Node
	if err := dec.Decode(&rest); err == nil {
		return catalogFile{}, fmt.Errorf("line %d: must hold a single YAML document", rest.Line)
	} else if !errors.Is(err, io.EOF) {
		return catalogFile{}, err
	}
	// Node.Decode has no KnownFields, so decode the bytes again.
	var f catalogFile
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return catalogFile{}, err
	}
	return f, nil
}

// catalog checks that the required fields are present and that the integers
// are integers; Catalog.Validate checks the rest.
func (f catalogFile) catalog() (credits.Catalog, error) {
	var cat credits.Catalog
	for i, e := range f.Operations {
		at := entry("operations", i, e.ID)
		op := credits.Operation{Description: e.Description}
		var err error
		switch {
		case e.ID == nil:
			err = fmt.Errorf("%s: id: required", at)
		case e.Name == nil:
			err = fmt.Errorf("%s: name: required", at)
		default:
			op.ID, op.Name = *e.ID, *e.Name
			op.Cost, err = count(at, "cost", &e.Cost)
		}
		if err != nil {
			return credits.Catalog{}, err
		}
		cat.Operations = append(cat.Operations, op)
	}
	for i, e := range f.Plans {
		at := entry("plans", i, e.ID)
		p := credits.Plan{Currency: e.Currency}
		var err error
		switch {
		case e.ID == nil:
			err = fmt.Errorf("%s: id: required", at)
		case e.Name == nil:
			err = fmt.Errorf("%s: name: required", at)
		default:
			p.ID, p.Name = *e.ID, *e.Name
			if p.MonthlyCredits, err = count(at, "monthly_credits", &e.MonthlyCredits); err == nil {
				p.PriceCents, err = count(at, "price_cents", &e.PriceCents)
			}
		}
		if err != nil {
			return credits.Catalog{}, err
		}
		cat.Plans = append(cat.Plans, p)
	}
	return cat, nil
}

// entry names list[i], with its id when it has one.
func entry(list string, i int, id *string) string {
	if id == nil {
		return fmt.Sprintf("%s[%d]", list, i)
	}
	return fmt.Sprintf("%s[%d] (%s)", list, i, *id)
}

// count reads a required integer >= 0 from n.
func count(at, field string, n *yaml.Node) (int64, error) {
	if n.Kind == 0 || n.ShortTag() == "!!null" {
		return 0, fmt.Errorf("%s: %s: required", at, field)
	}
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil || v < 0 {
		got := n.Value
		switch {
		case n.Kind != yaml.ScalarNode:
			got = n.ShortTag()
		case n.ShortTag() == "!!str":
			got = strconv.Quote(n.Value)
		}
		return 0, fmt.Errorf("%s: %s: must be an integer >= 0, got %s", at, field, got)
	}
	return v, nil
}

// fileError is a Validate error prefixed with the file name, without the
// error code that is meant for HTTP answers. errors.As still finds the
// *credits.Error.
type fileError struct {
	path string
	err  *credits.Error
}

func (e *fileError) Error() string { return e.path + ": " + e.err.Field + ": " + e.err.Message }
func (e *fileError) Unwrap() error { return e.err }

// CheckPlansInUse fails when cat drops a plan that some workspace is on
// (currently or pending); usage maps a plan id to its number of workspaces.
func CheckPlansInUse(cat credits.Catalog, usage map[string]int) error {
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(usage)) {
		n := usage[id]
		if _, ok := cat.Plan(id); ok || n <= 0 {
			continue
		}
		noun := "workspaces"
		if n == 1 {
			noun = "workspace"
		}
		errs = append(errs, fmt.Errorf("plan %q is used by %d %s but the catalog drops it", id, n, noun))
	}
	return errors.Join(errs...)
}
