package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// sqliteBusyTimeout is how long a SQLite connection waits for another one's write
// lock before failing with SQLITE_BUSY. Writes are short, so reaching it means
// something holds a transaction open far too long.
const sqliteBusyTimeout = 10 * time.Second

// Open validates cfg, connects to the database it describes and pings it within
// cfg.ConnectTimeout. The caller closes it with DB().Close().
//
// SQLite gets a pool like the servers, made safe by pragmas (see sqliteDSN): WAL
// lets readers run beside the one writer; BEGIN IMMEDIATE makes a transaction take
// the write lock when it starts, so one that reads then writes waits (busy_timeout)
// for the current writer rather than failing with SQLITE_BUSY at its first write,
// which no wait can fix; foreign_keys enforces REFERENCES, off by default in SQLite.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*gorm.DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dsn := cfg.dsn()
	tgt, err := parseTarget(cfg.Driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("db: %s DSN: %w", cfg.Driver, err)
	}

	var (
		sqlDB     *sql.DB
		dialector gorm.Dialector
	)
	switch cfg.Driver {
	case SQLite:
		if dir := filepath.Dir(sqlitePath(dsn)); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("db: create directory for %s: %w", tgt, err)
			}
		}
		full := sqliteDSN(dsn, sqliteBusyTimeout)
		if sqlDB, err = sql.Open(sqlite.DriverName, full); err != nil {
			return nil, fmt.Errorf("db: open %s: %w", tgt, err)
		}
		dialector = &sqlite.Dialector{DSN: full, Conn: sqlDB}
	case MySQL:
		mc := tgt.mysql
		mc.ParseTime = true // DATETIME columns scan into time.Time (in loc, UTC by default)
		if mc.Collation == "" && mc.Params["charset"] == "" {
			mc.Collation = "utf8mb4_general_ci" // full Unicode; the driver's default, made explicit
		}
		if mc.Timeout == 0 {
			mc.Timeout = cfg.ConnectTimeout // dials the pool makes later, without a deadline of their own
		}
		connector, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, fmt.Errorf("db: %s: %w", tgt, err)
		}
		sqlDB = sql.OpenDB(connector)
		dialector = gormmysql.New(gormmysql.Config{Conn: sqlDB, DSNConfig: mc})
	case Postgres:
		pc := tgt.pg
		if pc.ConnectTimeout == 0 {
			pc.ConnectTimeout = cfg.ConnectTimeout
		}
		sqlDB = stdlib.OpenDB(*pc)
		dialector = postgres.New(postgres.Config{Conn: sqlDB})
	}
	sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	sqlDB.SetMaxIdleConns(cfg.MaxIdleConns)
	sqlDB.SetConnMaxLifetime(cfg.ConnMaxLifetime)

	// Ping before gorm initialises: the MySQL dialector's version query has no deadline.
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("db: connect to %s: no answer within db.connect-timeout=%s: %w", tgt, cfg.ConnectTimeout, err)
		}
		return nil, fmt.Errorf("db: connect to %s: %w", tgt, err)
	}

	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger: newLogger(log, cfg.LogSlow),
		// Services pick timestamps themselves; UTC keeps the three dialects alike.
		NowFunc: func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("db: initialise %s: %w", tgt, err)
	}
	if cfg.Driver == MySQL {
		warnNonUTF8(pctx, gdb, log, tgt)
	}
	log.Info("database open", "db", tgt.String())
	return gdb, nil
}

// warnNonUTF8 flags a MySQL database whose default character set cannot hold every
// string (old servers default to latin1): tables gorm creates inherit it.
func warnNonUTF8(ctx context.Context, gdb *gorm.DB, log *slog.Logger, tgt target) {
	var charset string
	if err := gdb.WithContext(ctx).Raw("SELECT @@character_set_database").Scan(&charset).Error; err != nil {
		return // only a hint; a real problem surfaces on the first query
	}
	if !strings.HasPrefix(charset, "utf8mb4") {
		log.Warn("MySQL database default character set is not utf8mb4; create it with CHARACTER SET utf8mb4",
			"database", tgt.mysql.DBName, "charset", charset)
	}
}

// sqliteDSN appends the pragmas Open relies on to a SQLite DSN. Ours come first so a
// _pragma the operator wrote in db.dsn runs later and wins.
func sqliteDSN(dsn string, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds())) // first: switching to WAL may wait too
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)") // with WAL, a power cut may lose the last commits but never corrupts
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	path, user, _ := strings.Cut(dsn, "?")
	if user != "" {
		return path + "?" + q.Encode() + "&" + user
	}
	return path + "?" + q.Encode()
}
