// Package db opens Shoal's SQL database (SQLite, MySQL or PostgreSQL, through gorm),
// applies each service's versioned migrations and classifies driver errors portably.
package db

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Driver names a supported SQL dialect.
type Driver string

// The supported drivers.
const (
	SQLite   Driver = "sqlite"
	MySQL    Driver = "mysql"
	Postgres Driver = "postgres"
)

// Drivers returns every supported driver, SQLite first.
func Drivers() []Driver { return []Driver{SQLite, MySQL, Postgres} }

// DefaultSQLitePath is where SQLite keeps its file when db.dsn is empty.
const DefaultSQLitePath = "./data/shoal.db"

// Config selects and tunes the SQL database.
type Config struct {
	Driver Driver `yaml:"driver"`
	// DSN is a file path for sqlite, "user:pass@tcp(host:3306)/shoal" for mysql and
	// "postgres://user:pass@host:5432/shoal" (or key=value form) for postgres.
	DSN             string        `yaml:"dsn"`
	MaxOpenConns    int           `yaml:"max_open_conns"`
	MaxIdleConns    int           `yaml:"max_idle_conns"`
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
	ConnectTimeout  time.Duration `yaml:"connect_timeout"`
	// LogSlow is the duration above which a query is logged at warn level; 0 disables.
	LogSlow time.Duration `yaml:"log_slow"`
}

// RegisterFlags registers the db.* flags on fs and sets their defaults in c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar((*string)(&c.Driver), "db.driver", string(SQLite), "SQL database: sqlite, mysql or postgres")
	// The DSN defaults to empty rather than to the SQLite path so that choosing
	// mysql/postgres in a YAML file without a DSN is reported, not silently
	// pointed at a file name.
	fs.StringVar(&c.DSN, "db.dsn", "", "database DSN: empty means "+DefaultSQLitePath+" for sqlite; required for mysql and postgres")
	fs.IntVar(&c.MaxOpenConns, "db.max-open-conns", 16, "maximum open connections to the database (0 = unlimited)")
	fs.IntVar(&c.MaxIdleConns, "db.max-idle-conns", 8, "maximum idle connections kept in the pool")
	fs.DurationVar(&c.ConnMaxLifetime, "db.conn-max-lifetime", 30*time.Minute, "maximum time a connection is reused (0 = forever)")
	fs.DurationVar(&c.ConnectTimeout, "db.connect-timeout", 10*time.Second, "time allowed to connect and ping the database at start")
	fs.DurationVar(&c.LogSlow, "db.log-slow", 200*time.Millisecond, "log queries slower than this at warn level (0 = never)")
}

// Validate reports a configuration that cannot work, saying which flag to change.
func (c *Config) Validate() error {
	switch c.Driver {
	case SQLite:
		if p := sqlitePath(c.dsn()); p == ":memory:" || strings.Contains(c.dsn(), "mode=memory") {
			// Every pooled connection would get its own empty database.
			return errors.New("db.dsn: in-memory SQLite is not supported, use a file path (tests: a file in t.TempDir())")
		}
	case MySQL, Postgres:
		if c.DSN == "" {
			return fmt.Errorf("db.dsn is required for db.driver=%s (e.g. %s)", c.Driver, exampleDSN(c.Driver))
		}
		if _, err := parseTarget(c.Driver, c.DSN); err != nil {
			return fmt.Errorf("db.dsn is not a valid %s DSN (e.g. %s): %w", c.Driver, exampleDSN(c.Driver), err)
		}
	default:
		return fmt.Errorf("db.driver %q is not supported: use one of %s", c.Driver, driverList())
	}
	switch {
	case c.MaxOpenConns < 0:
		return fmt.Errorf("db.max-open-conns must be 0 (unlimited) or more, got %d", c.MaxOpenConns)
	case c.MaxIdleConns < 0:
		return fmt.Errorf("db.max-idle-conns must be 0 or more, got %d", c.MaxIdleConns)
	case c.MaxOpenConns > 0 && c.MaxIdleConns > c.MaxOpenConns:
		return fmt.Errorf("db.max-idle-conns (%d) must not exceed db.max-open-conns (%d)", c.MaxIdleConns, c.MaxOpenConns)
	case c.ConnMaxLifetime < 0:
		return fmt.Errorf("db.conn-max-lifetime must be 0 (forever) or more, got %s", c.ConnMaxLifetime)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("db.connect-timeout must be positive, got %s", c.ConnectTimeout)
	case c.LogSlow < 0:
		return fmt.Errorf("db.log-slow must be 0 (off) or more, got %s", c.LogSlow)
	}
	return nil
}

// Shared reports whether several processes can use the database at once, which is
// what running services in separate processes needs. A SQLite file belongs to one process.
func (c *Config) Shared() bool { return c.Driver != SQLite }

// dsn returns the DSN with the SQLite default applied.
func (c *Config) dsn() string {
	if c.DSN == "" && c.Driver == SQLite {
		return DefaultSQLitePath
	}
	return c.DSN
}

func driverList() string {
	names := make([]string, 0, len(Drivers()))
	for _, d := range Drivers() {
		names = append(names, string(d))
	}
	return strings.Join(names, ", ")
}

func exampleDSN(d Driver) string {
	switch d {
	case MySQL:
		return "shoal:secret@tcp(mysql:3306)/shoal"
	case Postgres:
		return "postgres://shoal:secret@postgres:5432/shoal"
	default:
		return DefaultSQLitePath
	}
}

// sqlitePath is the file part of a SQLite DSN, without "file:" and query parameters.
func sqlitePath(dsn string) string {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	return path
}

// target describes where a DSN points, for error messages: never the password.
type target struct {
	driver Driver
	where  string // "host:port (database "x", user "y")" or the SQLite file
	mysql  *mysql.Config
	pg     *pgx.ConnConfig
}

func (t target) String() string { return fmt.Sprintf("%s %s", t.driver, t.where) }

// parseTarget parses a mysql or postgres DSN. Both drivers' parse errors leave the
// password out (pgx redacts it explicitly), so they can be wrapped as they are.
func parseTarget(d Driver, dsn string) (target, error) {
	switch d {
	case MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return target{}, err
		}
		return target{driver: d, mysql: cfg,
			where: fmt.Sprintf("at %s (database %q, user %q)", cfg.Addr, cfg.DBName, cfg.User)}, nil
	case Postgres:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return target{}, err
		}
		host := cfg.Host
		if !strings.HasPrefix(host, "/") { // a unix socket directory has no port to show
			host = fmt.Sprintf("%s:%d", host, cfg.Port)
		}
		return target{driver: d, pg: cfg,
			where: fmt.Sprintf("at %s (database %q, user %q)", host, cfg.Database, cfg.User)}, nil
	default:
		return target{driver: d, where: fmt.Sprintf("file %s", sqlitePath(dsn))}, nil
	}
}
