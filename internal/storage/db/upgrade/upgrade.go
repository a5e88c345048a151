// Package upgrade checks the rule that lets two consecutive releases of
// Shoal run side by side on one database during a rolling update: a
// release's migrations only add. The previous release's processes keep
// reading and writing the tables the new release has migrated, so no table
// or column may be dropped or renamed, no type narrowed, no column made NOT
// NULL, no column added that the old code's inserts would leave NULL
// against a NOT NULL without a default, and no unique index or primary key
// added to or changed on a table that already holds rows.
//
// Inspect reads a database's schema as the server reports it; Check
// compares the previous release's schema with the one the new migrations
// left and names every breach. tests/upgrade runs both on every dialect
// against the snapshot of the last release.
package upgrade

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// Schema is a database's tables as the server reports them.
type Schema map[string]Table

// Table is one table's columns and indexes, by name.
type Table struct {
	Columns map[string]Column `json:"columns"`
	Indexes map[string]Index  `json:"indexes,omitempty"`
}

// Column is one column. Type is the server's name for it (varchar, int8,
// bigint, text, ...) and Length its size where the server gives one:
// characters for strings, bits for PostgreSQL's fixed-size types.
type Column struct {
	Type       string  `json:"type"`
	Length     int64   `json:"length,omitempty"`
	Nullable   bool    `json:"nullable"`
	Default    *string `json:"default,omitempty"`
	PrimaryKey bool    `json:"primary_key,omitempty"`
}

// Index is one index: its columns in order, and whether it is unique or
// the primary key.
type Index struct {
	Columns    []string `json:"columns"`
	Unique     bool     `json:"unique,omitempty"`
	PrimaryKey bool     `json:"primary_key,omitempty"`
}

// Inspect reads every table of the database gdb is connected to.
func Inspect(gdb *gorm.DB) (Schema, error) {
	m := gdb.Migrator()
	tables, err := m.GetTables()
	if err != nil {
		return nil, fmt.Errorf("upgrade: list tables: %w", err)
	}
	s := Schema{}
	for _, name := range tables {
		if strings.HasPrefix(name, "sqlite_") {
			continue // SQLite's own (sqlite_sequence)
		}
		cols, err := m.ColumnTypes(name)
		if err != nil {
			return nil, fmt.Errorf("upgrade: columns of %s: %w", name, err)
		}
		t := Table{Columns: map[string]Column{}, Indexes: map[string]Index{}}
		for _, c := range cols {
			col := Column{Type: strings.ToLower(c.DatabaseTypeName())}
			if n, ok := c.Length(); ok && n > 0 {
				col.Length = n
			}
			col.Nullable, _ = c.Nullable()
			if d, ok := c.DefaultValue(); ok {
				col.Default = &d
			}
			col.PrimaryKey, _ = c.PrimaryKey()
			t.Columns[c.Name()] = col
		}
		idx, err := m.GetIndexes(name)
		if err != nil {
			return nil, fmt.Errorf("upgrade: indexes of %s: %w", name, err)
		}
		for _, i := range idx {
			ix := Index{Columns: i.Columns()}
			ix.Unique, _ = i.Unique()
			ix.PrimaryKey, _ = i.PrimaryKey()
			if ix.PrimaryKey {
				ix.Unique = false // implied; drivers differ in saying so
			}
			t.Indexes[i.Name()] = ix
		}
		s[name] = t
	}
	return s, nil
}

// Check returns what in next, the schema after the new release's
// migrations, would break the previous release's code, written for prev;
// none when the migrations only added.
func Check(prev, next Schema) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, tn := range sortedKeys(prev) {
		old := prev[tn]
		cur, ok := next[tn]
		if !ok {
			add("table %s was dropped or renamed", tn)
			continue
		}
		for _, cn := range sortedKeys(old.Columns) {
			oc := old.Columns[cn]
			nc, ok := cur.Columns[cn]
			if !ok {
				add("column %s.%s was dropped or renamed", tn, cn)
				continue
			}
			if why := narrowed(oc, nc); why != "" {
				add("column %s.%s: %s", tn, cn, why)
			}
			if oc.Nullable && !nc.Nullable {
				add("column %s.%s was made NOT NULL", tn, cn)
			}
			if oc.Default != nil && nc.Default == nil {
				add("column %s.%s lost its default (%s)", tn, cn, *oc.Default)
			}
		}
		for _, cn := range sortedKeys(cur.Columns) {
			nc := cur.Columns[cn]
			if _, ok := old.Columns[cn]; !ok && !nc.Nullable && nc.Default == nil {
				add("new column %s.%s is NOT NULL without a default: the previous release's inserts leave it out", tn, cn)
			}
		}
		if o, n := primaryKey(old), primaryKey(cur); !slices.Equal(o, n) {
			add("table %s: primary key changed from %v to %v", tn, o, n)
		}
		for _, in := range sortedKeys(cur.Indexes) {
			ni := cur.Indexes[in]
			if !ni.Unique {
				continue
			}
			if oi, ok := old.Indexes[in]; ok && oi.Unique && slices.Equal(oi.Columns, ni.Columns) {
				continue
			}
			if hasUnique(old, ni.Columns) {
				continue // the same constraint under another name
			}
			add("new unique index %s on %s%v: the table's existing rows may violate it, and the previous release does not expect the error", in, tn, ni.Columns)
		}
		for _, in := range sortedKeys(old.Indexes) {
			oi := old.Indexes[in]
			if oi.Unique && !hasUnique(cur, oi.Columns) {
				add("unique index %s on %s%v was dropped: the previous release relies on it", in, tn, oi.Columns)
			}
		}
	}
	return problems
}

func hasUnique(t Table, cols []string) bool {
	for _, i := range t.Indexes {
		if i.Unique && slices.Equal(i.Columns, cols) {
			return true
		}
	}
	return false
}

func primaryKey(t Table) []string {
	for _, i := range t.Indexes {
		if i.PrimaryKey {
			return i.Columns
		}
	}
	var cols []string
	for _, n := range sortedKeys(t.Columns) {
		if t.Columns[n].PrimaryKey {
			cols = append(cols, n)
		}
	}
	return cols
}

// Families of column types whose members differ only in size; within
// one, a change to a larger member is a widening. The numbers rank the
// integers and floats; strings compare by Length.
var (
	integers = map[string]int{"tinyint": 1, "int1": 1, "smallint": 2, "int2": 2, "mediumint": 3,
		"int": 4, "integer": 4, "int4": 4, "bigint": 5, "int8": 5}
	floats = map[string]int{"real": 1, "float": 1, "float4": 1, "double": 2, "double precision": 2, "float8": 2}
	texts  = map[string]bool{"varchar": true, "character varying": true, "char": true, "bpchar": true,
		"text": true, "tinytext": true, "mediumtext": true, "longtext": true}
)

// narrowed says how a column's type changed in a way that may not hold
// the previous release's values, or "".
func narrowed(o, n Column) string {
	if o.Type == n.Type && o.Length == n.Length {
		return ""
	}
	changed := fmt.Sprintf("type changed from %s to %s", describe(o), describe(n))
	switch {
	case integers[o.Type] > 0 && integers[n.Type] > 0:
		if integers[n.Type] < integers[o.Type] || (o.Type == n.Type && n.Length < o.Length) {
			return "narrowed: " + changed
		}
		return ""
	case floats[o.Type] > 0 && floats[n.Type] > 0:
		if floats[n.Type] < floats[o.Type] {
			return "narrowed: " + changed
		}
		return ""
	case texts[o.Type] && texts[n.Type]:
		// No length is no limit (PostgreSQL's and SQLite's text).
		if n.Length != 0 && (o.Length == 0 || n.Length < o.Length) {
			return "narrowed: " + changed
		}
		return ""
	}
	return changed
}

func describe(c Column) string {
	if c.Length > 0 {
		return fmt.Sprintf("%s(%d)", c.Type, c.Length)
	}
	return c.Type
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
