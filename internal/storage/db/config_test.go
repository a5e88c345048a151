package db_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/storage/db"
)

func defaultConfig(t *testing.T) db.Config {
	t.Helper()
	var cfg db.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := defaultConfig(t)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default Validate() = %v; want nil", err)
	}
	if cfg.Driver != db.SQLite || cfg.Shared() {
		t.Errorf("default Driver = %q, Shared() = %v; want sqlite, false", cfg.Driver, cfg.Shared())
	}
}

func TestConfigFlags(t *testing.T) {
	var cfg db.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{
		"-db.driver=postgres", "-db.dsn=postgres://u@h/d",
		"-db.max-open-conns=4", "-db.max-idle-conns=2", "-db.conn-max-lifetime=1m",
		"-db.connect-timeout=3s", "-db.log-slow=1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := db.Config{Driver: db.Postgres, DSN: "postgres://u@h/d", MaxOpenConns: 4, MaxIdleConns: 2,
		ConnMaxLifetime: time.Minute, ConnectTimeout: 3 * time.Second, LogSlow: time.Second}
	if cfg != want {
		t.Errorf("parsed flags = %+v; want %+v", cfg, want)
	}
	if !cfg.Shared() {
		t.Errorf("Shared() = false for postgres; want true")
	}
}

func TestConfigValidate(t *testing.T) {
	const password = "s3cr3t-pw"
	tests := []struct {
		name    string
		edit    func(*db.Config)
		wantErr string // "" = valid
	}{
		{"sqlite default path", func(c *db.Config) {}, ""},
		{"sqlite file", func(c *db.Config) { c.DSN = "/tmp/x/shoal.db" }, ""},
		{"mysql", func(c *db.Config) { c.Driver, c.DSN = db.MySQL, "root:"+password+"@tcp(db:3306)/shoal" }, ""},
		{"postgres url", func(c *db.Config) { c.Driver, c.DSN = db.Postgres, "postgres://root:"+password+"@db/shoal" }, ""},
		{"postgres key value", func(c *db.Config) { c.Driver, c.DSN = db.Postgres, "host=db user=root dbname=shoal" }, ""},
		{"unknown driver", func(c *db.Config) { c.Driver = "oracle" }, `db.driver "oracle" is not supported: use one of sqlite, mysql, postgres`},
		{"sqlite in memory", func(c *db.Config) { c.DSN = ":memory:" }, "in-memory SQLite is not supported"},
		{"mysql without dsn", func(c *db.Config) { c.Driver = db.MySQL }, "db.dsn is required for db.driver=mysql"},
		{"postgres without dsn", func(c *db.Config) { c.Driver = db.Postgres }, "db.dsn is required for db.driver=postgres"},
		{"mysql bad dsn", func(c *db.Config) { c.Driver, c.DSN = db.MySQL, "root:"+password+"@db:3306/shoal" }, "db.dsn is not a valid mysql DSN"},
		{"postgres bad dsn", func(c *db.Config) { c.Driver, c.DSN = db.Postgres, "postgres://root:"+password+"@db:notaport/shoal" }, "db.dsn is not a valid postgres DSN"},
		{"negative open conns", func(c *db.Config) { c.MaxOpenConns = -1 }, "db.max-open-conns must be 0 (unlimited) or more"},
		{"idle above open", func(c *db.Config) { c.MaxOpenConns, c.MaxIdleConns = 2, 3 }, "db.max-idle-conns (3) must not exceed db.max-open-conns (2)"},
		{"idle with unlimited open", func(c *db.Config) { c.MaxOpenConns, c.MaxIdleConns = 0, 3 }, ""},
		{"negative lifetime", func(c *db.Config) { c.ConnMaxLifetime = -time.Second }, "db.conn-max-lifetime"},
		{"zero connect timeout", func(c *db.Config) { c.ConnectTimeout = 0 }, "db.connect-timeout must be positive"},
		{"negative slow", func(c *db.Config) { c.LogSlow = -time.Second }, "db.log-slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig(t)
			tt.edit(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v; want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), password):
				t.Fatalf("Validate() = %v; leaks the password", err)
			}
		})
	}
}
