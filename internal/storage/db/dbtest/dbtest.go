// Package dbtest gives tests a fresh, empty database on each SQL driver Shoal supports:
//
//	func TestStore(t *testing.T) {
//		dbtest.Each(t, func(t *testing.T, cfg db.Config) {
//			gdb := dbtest.Open(t, cfg)
//			...
//		})
//	}
//
// SQLite always runs, in t.TempDir(). MySQL and PostgreSQL run when
// SHOAL_TEST_MYSQL_DSN and SHOAL_TEST_POSTGRES_DSN point at a server where the DSN's
// user may create databases (eval "$(scripts/test-sql.sh)" sets both); each test
// gets its own database there, dropped when it ends. Otherwise those subtests
// skip, or fail when SHOAL_TEST_SQL_REQUIRED=1 (for CI). Databases are isolated,
// so fn may call t.Parallel.
package dbtest

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/testlog"
)

// Environment variables that point the tests at servers.
const (
	EnvMySQL    = "SHOAL_TEST_MYSQL_DSN"
	EnvPostgres = "SHOAL_TEST_POSTGRES_DSN"
	EnvRequired = "SHOAL_TEST_SQL_REQUIRED"
)

// adminTimeout bounds creating and dropping a test database.
const adminTimeout = 30 * time.Second

// Each runs fn as one subtest per driver, named after it, each with its own database.
func Each(t *testing.T, fn func(t *testing.T, cfg db.Config)) {
	t.Helper()
	for _, d := range db.Drivers() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Config(t, d))
		})
	}
}

// Config returns the default configuration pointing at a new, empty database of
// driver d, removed when t ends. It skips t when d's server is not configured.
func Config(t testing.TB, d db.Driver) db.Config {
	t.Helper()
	var cfg db.Config
	cfg.RegisterFlags(flag.NewFlagSet("dbtest", flag.ContinueOnError)) // defaults
	cfg.Driver = d
	switch d {
	case db.SQLite:
		cfg.DSN = filepath.Join(t.TempDir(), "shoal.db")
	case db.MySQL:
		cfg.DSN = createMySQL(t, serverDSN(t, EnvMySQL), databaseName(t))
	case db.Postgres:
		cfg.DSN = createPostgres(t, serverDSN(t, EnvPostgres), databaseName(t))
	default:
		t.Fatalf("dbtest: unknown driver %q", d)
	}
	return cfg
}

// Open opens cfg with a logger to t's output, closing it when t ends.
func Open(t testing.TB, cfg db.Config) *gorm.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	gdb, err := db.Open(ctx, cfg, testlog.New(t))
	if err != nil {
		t.Fatalf("db.Open(%s) = %v", cfg.Driver, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := gdb.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return gdb
}

func serverDSN(t testing.TB, env string) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		msg := fmt.Sprintf("%s is not set: run eval \"$(scripts/test-sql.sh)\" to test against the real server", env)
		if os.Getenv(EnvRequired) == "1" {
			t.Fatal(msg + " (" + EnvRequired + "=1 makes this an error)")
		}
		t.Skip(msg)
	}
	return dsn
}

// databaseName is unique per call and says which test made it, should one be left behind.
func databaseName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if b.Len() == 24 {
			break
		}
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("shoaltest_%s_%08x", b.String(), rand.Uint32())
}

func createMySQL(t testing.TB, serverDSN, name string) string {
	t.Helper()
	mc, err := mysql.ParseDSN(serverDSN)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", EnvMySQL, err)
	}
	admin(t, "mysql", serverDSN,
		"CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"DROP DATABASE IF EXISTS "+name)
	mc.DBName = name
	return mc.FormatDSN()
}

func createPostgres(t testing.TB, serverDSN, name string) string {
	t.Helper()
	admin(t, "pgx", serverDSN,
		"CREATE DATABASE "+name,
		// FORCE ends sessions a test left open, which would block the drop.
		"DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	if u, err := url.Parse(serverDSN); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return serverDSN + " dbname=" + name // key=value form: the last dbname wins
}

// admin runs create now and drop when t ends, each on a short-lived connection to
// the server.
func admin(t testing.TB, driverName, dsn, create, drop string) {
	t.Helper()
	exec := func(stmt string) error {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		conn, err := sql.Open(driverName, dsn)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.ExecContext(ctx, stmt)
		return err
	}
	if err := exec(create); err != nil {
		t.Fatalf("dbtest: %s (is the server up? run scripts/test-sql.sh): %v", create, err)
	}
	t.Cleanup(func() {
		if err := exec(drop); err != nil {
			t.Errorf("dbtest: %s: %v", drop, err)
		}
	})
}
