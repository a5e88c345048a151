// Package upgrade_test holds the check that lets two consecutive releases
// run side by side on one database during a rolling update: this tree's
// migrations, run on the database of the previous release, may only add.
//
// testdata/schema.<driver>.json is the previous release's schema on each
// dialect: the migrations each service had applied, and every table,
// column and index they created, as the server reports them. On each
// dialect (SQLite always; MariaDB and PostgreSQL with the servers of
// scripts/test-sql.sh) the test
//
//  1. runs, on an empty database, the migrations the snapshot lists, from
//     this tree: they must be the first of each service's list and must
//     create exactly the snapshot's schema (a released migration is never
//     edited, removed or reordered);
//  2. writes a row into every table, the previous release's data;
//  3. runs the rest of this tree's migrations, which must succeed on that
//     data, and checks with upgrade.Check that nothing the previous release
//     uses was dropped, renamed, narrowed or newly constrained;
//  4. checks that the upgraded database has the schema a fresh install of
//     this tree gets.
//
// At a release, refresh the snapshot (make schema-snapshot), so that the
// next release is held to it. The snapshot also names the release's
// commit, which TestPreviousReleaseSideBySide (previous_test.go, make
// test-upgrade) builds and runs next to this tree on one database.
package upgrade_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/storage/db/upgrade"
	"github.com/shoalml/shoal/services/auth"
	"github.com/shoalml/shoal/services/dataset"
	"github.com/shoalml/shoal/services/registry"
	"github.com/shoalml/shoal/services/trainer"
)

var update = flag.Bool("update", false, "write testdata/schema.<driver>.json from this tree's migrations (at a release: make schema-snapshot)")

// components are the services that own tables, each with its migrations.
var components = []func() (string, []db.Migration){
	auth.Migrations, dataset.Migrations, registry.Migrations, trainer.Migrations,
}

// migrationsTable is db.Migrate's record of what ran, which every
// release shares and the test leaves to it.
const migrationsTable = "shoal_schema_migrations"

// snapshot is a release's schema on one dialect.
type snapshot struct {
	// Commit is the release's commit (TestPreviousReleaseSideBySide
	// builds it).
	Commit string `json:"commit"`
	// Migrations are the IDs each service had applied, by component.
	Migrations map[string][]string `json:"migrations"`
	Tables     upgrade.Schema      `json:"tables"`
}

func snapshotPath(d db.Driver) string {
	return filepath.Join("testdata", "schema."+string(d)+".json")
}

func TestRollingUpgrade(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		if *update {
			writeSnapshot(ctx, t, cfg)
			return
		}
		b, err := os.ReadFile(snapshotPath(cfg.Driver))
		if err != nil {
			t.Fatalf("%v: make schema-snapshot writes the snapshots of a release", err)
		}
		var prev snapshot
		if err := json.Unmarshal(b, &prev); err != nil {
			t.Fatalf("%s: %v", snapshotPath(cfg.Driver), err)
		}

		// 1. The previous release's database, made by this tree's copies
		// of its migrations.
		gdb := dbtest.Open(t, cfg)
		for _, c := range components {
			name, migs := c()
			released := prev.Migrations[name]
			for i, id := range released {
				if i >= len(migs) || migs[i].ID != id {
					t.Fatalf("%s: released migration %s is not #%d of this tree's list: released migrations are never removed, renamed or reordered", name, id, i+1)
				}
			}
			if err := db.Migrate(ctx, gdb, name, migs[:len(released)]); err != nil {
				t.Fatalf("the previous release's migrations of %s: %v", name, err)
			}
		}
		for name := range prev.Migrations {
			if !slices.ContainsFunc(components, func(c func() (string, []db.Migration)) bool { n, _ := c(); return n == name }) {
				t.Errorf("the previous release migrated %s, which this tree no longer does: its tables stay in use until that release is gone", name)
			}
		}
		old := inspect(t, gdb)
		if diff := diffSchemas(prev.Tables, old); diff != "" {
			t.Fatalf("the previous release's migrations, run from this tree, no longer create its schema (%s): "+
				"a released migration was edited; add a new migration instead\n%s", snapshotPath(cfg.Driver), diff)
		}

		// 2. Its data.
		if err := upgrade.Seed(gdb, old, migrationsTable); err != nil {
			t.Fatal(err)
		}

		// 3. This tree's migrations on it.
		migrateAll(ctx, t, gdb, "on the previous release's database, with a row in every table")
		upgraded := inspect(t, gdb)
		for _, p := range upgrade.Check(prev.Tables, upgraded) {
			t.Errorf("breaks the previous release during a rolling update: %s", p)
		}

		// 4. The same schema as a fresh install.
		fresh := dbtest.Open(t, dbtest.Config(t, cfg.Driver))
		migrateAll(ctx, t, fresh, "on an empty database")
		if diff := diffSchemas(inspect(t, fresh), upgraded); diff != "" {
			t.Errorf("an upgraded database differs from a fresh install of this tree:\n%s", diff)
		}
	})
}

// migrateAll runs every service's migrations, as the services do at start.
func migrateAll(ctx context.Context, t *testing.T, gdb *gorm.DB, where string) {
	t.Helper()
	for _, c := range components {
		name, migs := c()
		if err := db.Migrate(ctx, gdb, name, migs); err != nil {
			t.Fatalf("this tree's migrations of %s fail %s: %v", name, where, err)
		}
	}
}

func inspect(t *testing.T, gdb *gorm.DB) upgrade.Schema {
	t.Helper()
	s, err := upgrade.Inspect(gdb)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeSnapshot records this tree's migrations and the schema they
// create on a fresh database.
func writeSnapshot(ctx context.Context, t *testing.T, cfg db.Config) {
	gdb := dbtest.Open(t, cfg)
	migrateAll(ctx, t, gdb, "on an empty database")
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	s := snapshot{Commit: strings.TrimSpace(string(head)), Migrations: map[string][]string{}, Tables: inspect(t, gdb)}
	for _, c := range components {
		name, migs := c()
		for _, m := range migs {
			s.Migrations[name] = append(s.Migrations[name], m.ID)
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snapshotPath(cfg.Driver), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", snapshotPath(cfg.Driver))
}

// diffSchemas lists the tables whose description differs, each as want
// and got, or "" when the schemas are the same.
func diffSchemas(want, got upgrade.Schema) string {
	var b strings.Builder
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		w, _ := json.Marshal(want[n])
		g, _ := json.Marshal(got[n])
		if _, ok := want[n]; !ok {
			w = []byte("(none)")
		}
		if _, ok := got[n]; !ok {
			g = []byte("(none)")
		}
		if string(w) != string(g) {
			fmt.Fprintf(&b, "table %s:\n  want %s\n  got  %s\n", n, w, g)
		}
	}
	return b.String()
}
