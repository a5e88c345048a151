package db_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// runLog records which migrations ran, in order.
type runLog struct {
	mu  sync.Mutex
	ids []string
}

func (r *runLog) ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// migration creates table t_<component>_<id>, so running twice would also fail in SQL.
func (r *runLog) migration(component, id string) db.Migration {
	return db.Migration{ID: id, Up: func(tx *gorm.DB) error {
		r.mu.Lock()
		r.ids = append(r.ids, id)
		r.mu.Unlock()
		return tx.Exec("CREATE TABLE t_" + component + "_" + id + " (id INTEGER PRIMARY KEY)").Error
	}}
}

type appliedRow struct {
	ID        string
	AppliedAt time.Time
}

func applied(t *testing.T, gdb *gorm.DB, component string) []string {
	t.Helper()
	var rows []appliedRow
	err := gdb.WithContext(t.Context()).
		Raw("SELECT id, applied_at FROM shoal_schema_migrations WHERE component = ? ORDER BY id", component).
		Scan(&rows).Error
	if err != nil {
		t.Fatalf("reading shoal_schema_migrations: %v", err)
	}
	ids := []string{}
	for _, r := range rows {
		if time.Since(r.AppliedAt).Abs() > time.Hour {
			t.Errorf("migration %s applied_at = %v; want about now", r.ID, r.AppliedAt)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func TestMigrateAppliesOnceInOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		gdb := dbtest.Open(t, cfg)
		ctx := t.Context()
		var log runLog
		v1 := []db.Migration{log.migration("alpha", "0001_a"), log.migration("alpha", "0002_b")}
		v2 := append(slices.Clone(v1), log.migration("alpha", "0003_c"))

		steps := []struct {
			name        string
			component   string
			migs        []db.Migration
			wantRan     []string
			wantApplied []string
		}{
			{"first run applies all", "alpha", v1, []string{"0001_a", "0002_b"}, []string{"0001_a", "0002_b"}},
			{"second run is a no-op", "alpha", v1, []string{"0001_a", "0002_b"}, []string{"0001_a", "0002_b"}},
			{"new migration runs alone", "alpha", v2, []string{"0001_a", "0002_b", "0003_c"}, []string{"0001_a", "0002_b", "0003_c"}},
			{"components are independent", "beta", []db.Migration{log.migration("beta", "0001_a")},
				[]string{"0001_a", "0002_b", "0003_c", "0001_a"}, []string{"0001_a"}},
			{"empty list", "gamma", nil, []string{"0001_a", "0002_b", "0003_c", "0001_a"}, []string{}},
		}
		for _, s := range steps {
			if err := db.Migrate(ctx, gdb, s.component, s.migs); err != nil {
				t.Fatalf("%s: Migrate(%s) = %v", s.name, s.component, err)
			}
			if got := log.ran(); !slices.Equal(got, s.wantRan) {
				t.Errorf("%s: ran %v; want %v", s.name, got, s.wantRan)
			}
			if got := applied(t, gdb, s.component); !slices.Equal(got, s.wantApplied) {
				t.Errorf("%s: recorded %v; want %v", s.name, got, s.wantApplied)
			}
		}
	})
}

func TestMigrateRefusesUnknownSchema(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		gdb := dbtest.Open(t, cfg)
		ctx := t.Context()
		var log runLog
		m1, m2, m3 := log.migration("alpha", "0001_a"), log.migration("alpha", "0002_b"), log.migration("alpha", "0003_c")
		m4 := log.migration("alpha", "0004_d")
		if err := db.Migrate(ctx, gdb, "alpha", []db.Migration{m1, m3}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name    string
			migs    []db.Migration
			wantErr error
			wantMsg string
		}{
			{"another binary's migration in place of one of the list", []db.Migration{m1, m4}, db.ErrSchemaTooNew, "has migration 0003_c, which this binary does not know, in place of its 0004_d"},
			{"migration inserted before the last", []db.Migration{m1, m2, m3}, db.ErrSchemaGap, "has migration 0003_c but not 0002_b"},
		}
		for _, tt := range tests {
			err := db.Migrate(ctx, gdb, "alpha", tt.migs)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("%s: Migrate() = %v; want %v containing %q", tt.name, err, tt.wantErr, tt.wantMsg)
			}
		}
		if got, want := log.ran(), []string{"0001_a", "0003_c"}; !slices.Equal(got, want) {
			t.Errorf("ran %v; want %v (refusals must run nothing)", got, want)
		}
	})
}

// TestMigrateOlderRelease: the previous release starts on the schema a newer
// one migrated, as a rolling update restarts it, and changes nothing.
func TestMigrateOlderRelease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		gdb := dbtest.Open(t, cfg)
		ctx := t.Context()
		var log runLog
		m1, m2 := log.migration("alpha", "0001_a"), log.migration("alpha", "0002_b")
		if err := db.Migrate(ctx, gdb, "alpha", []db.Migration{m1, m2}); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, gdb, "alpha", []db.Migration{m1}); err != nil {
			t.Errorf("Migrate(the previous release's list) = %v; want nil", err)
		}
		if got, want := log.ran(), []string{"0001_a", "0002_b"}; !slices.Equal(got, want) {
			t.Errorf("ran %v; want %v", got, want)
		}
		if got, want := applied(t, gdb, "alpha"), []string{"0001_a", "0002_b"}; !slices.Equal(got, want) {
			t.Errorf("recorded %v; want %v", got, want)
		}
	})
}

func TestMigrateRejectsBadList(t *testing.T) {
	gdb := dbtest.Open(t, dbtest.Config(t, db.SQLite))
	up := func(*gorm.DB) error { t.Error("Up ran for a rejected list"); return nil }
	tests := []struct {
		name      string
		component string
		ids       []string
	}{
		{"empty component", "", []string{"0001_a"}},
		{"uppercase component", "Alpha", []string{"0001_a"}},
		{"empty id", "alpha", []string{"0001_a", ""}},
		{"uppercase id", "alpha", []string{"0001_A"}},
		{"id with a dash", "alpha", []string{"0001-a"}},
		{"duplicate", "alpha", []string{"0001_a", "0002_b", "0002_b"}},
		{"out of order", "alpha", []string{"0002_b", "0001_a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var migs []db.Migration
			for _, id := range tt.ids {
				migs = append(migs, db.Migration{ID: id, Up: up})
			}
			if err := db.Migrate(t.Context(), gdb, tt.component, migs); !errors.Is(err, db.ErrInvalidMigrations) {
				t.Errorf("Migrate(%q, %q) = %v; want ErrInvalidMigrations", tt.component, tt.ids, err)
			}
		})
	}
	t.Run("nil Up", func(t *testing.T) {
		err := db.Migrate(t.Context(), gdb, "alpha", []db.Migration{{ID: "0001_a"}})
		if !errors.Is(err, db.ErrInvalidMigrations) {
			t.Errorf("Migrate(nil Up) = %v; want ErrInvalidMigrations", err)
		}
	})
	if gdb.Migrator().HasTable("shoal_schema_migrations") {
		t.Errorf("a rejected list created shoal_schema_migrations; want the database untouched")
	}
}

func TestMigrateFailureRecordsNothing(t *testing.T) {
	errBoom := errors.New("boom")
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		gdb := dbtest.Open(t, cfg)
		ctx := t.Context()
		var log runLog
		first, third := log.migration("alpha", "0001_a"), log.migration("alpha", "0003_c")
		failing := db.Migration{ID: "0002_half", Up: func(tx *gorm.DB) error {
			if err := tx.Exec("CREATE TABLE half (id INTEGER PRIMARY KEY)").Error; err != nil {
				return err
			}
			return errBoom
		}}

		err := db.Migrate(ctx, gdb, "alpha", []db.Migration{first, failing, third})
		if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "migrate alpha: 0002_half") {
			t.Fatalf("Migrate() = %v; want boom from 0002_half", err)
		}
		if got, want := applied(t, gdb, "alpha"), []string{"0001_a"}; !slices.Equal(got, want) {
			t.Errorf("recorded %v; want %v (the one before the failure)", got, want)
		}
		if got, want := log.ran(), []string{"0001_a"}; !slices.Equal(got, want) {
			t.Errorf("ran %v; want %v (nothing after the failure)", got, want)
		}
		// MySQL cannot roll DDL back; Migrate says so.
		mysql := cfg.Driver == db.MySQL
		if got := gdb.Migrator().HasTable("half"); got != mysql {
			t.Errorf("table of the failed migration exists = %v; want %v", got, mysql)
		}
		if got := strings.Contains(err.Error(), "MySQL commits DDL"); got != mysql {
			t.Errorf("Migrate() = %q; mentions MySQL's implicit commit = %v, want %v", err, got, mysql)
		}

		fixed := db.Migration{ID: "0002_half", Up: func(tx *gorm.DB) error {
			return tx.Exec("CREATE TABLE IF NOT EXISTS half (id INTEGER PRIMARY KEY)").Error
		}}
		if err := db.Migrate(ctx, gdb, "alpha", []db.Migration{first, fixed, third}); err != nil {
			t.Fatalf("Migrate(fixed) = %v", err)
		}
		if got, want := applied(t, gdb, "alpha"), []string{"0001_a", "0002_half", "0003_c"}; !slices.Equal(got, want) {
			t.Errorf("after the fix recorded %v; want %v", got, want)
		}
	})
}

// TestMigrateConcurrent starts Migrate on several handles at once, as several
// processes starting together would: each migration must run exactly once.
func TestMigrateConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		const handles = 6
		components := []string{"alpha", "beta"}
		dbs := make([]*gorm.DB, handles)
		for i := range dbs {
			dbs[i] = dbtest.Open(t, cfg)
		}
		runs := map[string]*atomic.Int32{}
		lists := map[string][]db.Migration{}
		for _, c := range components {
			for _, id := range []string{"0001_a", "0002_b", "0003_c"} {
				n := new(atomic.Int32)
				runs[c+"/"+id] = n
				lists[c] = append(lists[c], db.Migration{ID: id, Up: func(tx *gorm.DB) error {
					n.Add(1)
					return tx.Exec("CREATE TABLE t_" + c + "_" + id + " (id INTEGER PRIMARY KEY)").Error
				}})
			}
		}

		start := make(chan struct{})
		errs := make([]error, handles)
		var wg sync.WaitGroup
		for i, gdb := range dbs {
			wg.Go(func() {
				<-start
				c := components[i%len(components)]
				errs[i] = db.Migrate(t.Context(), gdb, c, lists[c])
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate on handle %d = %v", i, err)
			}
		}
		for name, n := range runs {
			if got := n.Load(); got != 1 {
				t.Errorf("migration %s ran %d times; want 1", name, got)
			}
		}
		for _, c := range components {
			if got, want := applied(t, dbs[0], c), []string{"0001_a", "0002_b", "0003_c"}; !slices.Equal(got, want) {
				t.Errorf("%s recorded %v; want %v", c, got, want)
			}
		}
	})
}

// TestMigrateCanceledReleasesLock cancels Migrate mid-way; another handle, as another
// process would, must then get the lock and finish the job.
func TestMigrateCanceledReleasesLock(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		canceling := db.Migration{ID: "0001_a", Up: func(tx *gorm.DB) error {
			cancel()
			return nil
		}}
		if err := db.Migrate(ctx, dbtest.Open(t, cfg), "alpha", []db.Migration{canceling}); err == nil {
			t.Fatalf("Migrate(canceled) = nil; want an error")
		}

		other := dbtest.Open(t, cfg)
		// Far below the lock wait: a leaked lock fails here, not after minutes.
		ctx2, cancel2 := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel2()
		var log runLog
		if err := db.Migrate(ctx2, other, "alpha", []db.Migration{log.migration("alpha", "0001_a")}); err != nil {
			t.Fatalf("Migrate after a canceled one = %v", err)
		}
		if got, want := applied(t, other, "alpha"), []string{"0001_a"}; !slices.Equal(got, want) {
			t.Errorf("recorded %v; want %v", got, want)
		}
	})
}
