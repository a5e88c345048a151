package upgrade

import (
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Seed writes one row into each of the schema's tables but skip, a value in
// every column, so that migrations run next meet existing data as they do
// in production: a NOT NULL column added without a default, or a
// constraint the row breaks, fails there. A table that already holds a row
// with the same key keeps it.
func Seed(gdb *gorm.DB, s Schema, skip ...string) error {
	now := time.Now().UTC().Truncate(time.Second)
	// Keep a row already there: MySQL's ON DUPLICATE KEY needs a column to
	// name, which a table without a model does not give gorm.
	var keep clause.Expression = clause.OnConflict{DoNothing: true}
	if gdb.Dialector.Name() == "mysql" {
		keep = clause.Insert{Modifier: "IGNORE"}
	}
	for _, tn := range sortedKeys(s) {
		if slices.Contains(skip, tn) {
			continue
		}
		row := map[string]any{}
		for _, cn := range sortedKeys(s[tn].Columns) {
			c := s[tn].Columns[cn]
			v, ok := seedValue(c, now)
			if !ok {
				return fmt.Errorf("upgrade: seed %s.%s: no value for type %s", tn, cn, c.Type)
			}
			row[cn] = v
		}
		if err := gdb.Clauses(keep).Table(tn).Create(row).Error; err != nil {
			return fmt.Errorf("upgrade: seed %s: %w", tn, err)
		}
	}
	return nil
}

func seedValue(c Column, now time.Time) (any, bool) {
	switch {
	case integers[c.Type] > 0:
		return 1, true
	case floats[c.Type] > 0, c.Type == "numeric", c.Type == "decimal":
		return 1, true // also SQLite's booleans, which are numeric
	case texts[c.Type]:
		return "x", true
	case c.Type == "bool" || c.Type == "boolean":
		return true, true
	case c.Type == "timestamptz" || c.Type == "timestamp" || c.Type == "datetime" || c.Type == "date":
		return now, true
	case c.Type == "bytea" || c.Type == "blob" || c.Type == "longblob":
		return []byte("x"), true
	case c.Nullable:
		return nil, true
	}
	return nil, false
}
