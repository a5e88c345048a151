package db_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

func TestOpen(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		gdb := dbtest.Open(t, cfg)
		if got := gdb.Dialector.Name(); got != string(cfg.Driver) {
			t.Errorf("Dialector.Name() = %q; want %q", got, cfg.Driver)
		}
		var one int
		if err := gdb.WithContext(t.Context()).Raw("SELECT 1").Scan(&one).Error; err != nil || one != 1 {
			t.Fatalf("SELECT 1 = %d, %v; want 1, nil", one, err)
		}
		sqlDB, err := gdb.DB()
		if err != nil {
			t.Fatal(err)
		}
		if got := sqlDB.Stats().MaxOpenConnections; got != cfg.MaxOpenConns {
			t.Errorf("MaxOpenConnections = %d; want %d", got, cfg.MaxOpenConns)
		}
	})
}

func TestOpenSQLiteSettings(t *testing.T) {
	cfg := dbtest.Config(t, db.SQLite)
	cfg.DSN = filepath.Join(t.TempDir(), "nested", "dir", "shoal.db") // Open creates the directories
	gdb := dbtest.Open(t, cfg)
	if _, err := os.Stat(cfg.DSN); err != nil {
		t.Fatalf("database file: %v", err)
	}
	// Every pooled connection must carry the pragmas, so ask on several at once.
	sqlDB, _ := gdb.DB()
	ctx := t.Context()
	for range 3 {
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"busy_timeout", "10000"},
			{"synchronous", "1"}, // NORMAL
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil || got != p.want {
				t.Errorf("PRAGMA %s = %q, %v; want %q", p.pragma, got, err, p.want)
			}
		}
	}
}

// TestSQLiteConcurrentWriters is why SQLite transactions BEGIN IMMEDIATE: with the
// default deferred BEGIN, a transaction that reads then writes fails at once with
// SQLITE_BUSY when another connection wrote meanwhile (no busy wait can help it),
// and this test fails. Two handles stand for two pools on one file.
func TestSQLiteConcurrentWriters(t *testing.T) {
	cfg := dbtest.Config(t, db.SQLite)
	handles := []*gorm.DB{dbtest.Open(t, cfg), dbtest.Open(t, cfg)}
	ctx := t.Context()
	type counter struct {
		ID int
		N  int
	}
	if err := handles[0].WithContext(ctx).AutoMigrate(&counter{}); err != nil {
		t.Fatal(err)
	}
	if err := handles[0].WithContext(ctx).Create(&counter{ID: 1}).Error; err != nil {
		t.Fatal(err)
	}

	const writers, increments = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			gdb := handles[w%len(handles)].WithContext(ctx)
			for range increments {
				err := gdb.Transaction(func(tx *gorm.DB) error {
					var c counter
					if err := tx.First(&c, 1).Error; err != nil {
						return err
					}
					return tx.Model(&c).Update("n", c.N+1).Error
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment: %v", err)
	}
	var c counter
	if err := handles[1].WithContext(ctx).First(&c, 1).Error; err != nil || c.N != writers*increments {
		t.Fatalf("counter = %d, %v; want %d (no lost updates)", c.N, err, writers*increments)
	}
}

// closedPort returns a local TCP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer returns the address of a listener that accepts connections (the
// kernel does, from its backlog) but never answers, like a hung server.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func TestOpenErrors(t *testing.T) {
	const password = "s3cr3t-pw"
	addr := closedPort(t)
	host, port, _ := net.SplitHostPort(addr)
	silent := silentServer(t)
	type test struct {
		name   string
		driver db.Driver
		dsn    string
		want   []string // substrings of the error
	}
	tests := []test{
		{"mysql unreachable", db.MySQL, fmt.Sprintf("shoal:%s@tcp(%s)/shoal", password, addr),
			[]string{"connect to mysql at " + addr, `database "shoal"`, `user "shoal"`}},
		{"postgres unreachable", db.Postgres, fmt.Sprintf("postgres://shoal:%s@%s/shoal", password, addr),
			[]string{"connect to postgres at " + addr, `database "shoal"`, `user "shoal"`}},
		{"postgres unreachable key value", db.Postgres, fmt.Sprintf("host=%s port=%s user=shoal password=%s dbname=shoal", host, port, password),
			[]string{"connect to postgres at " + addr}},
		{"mysql silent", db.MySQL, fmt.Sprintf("shoal:%s@tcp(%s)/shoal", password, silent),
			[]string{"connect to mysql at " + silent, "no answer within db.connect-timeout=500ms"}},
		{"postgres silent", db.Postgres, fmt.Sprintf("postgres://shoal:%s@%s/shoal", password, silent),
			[]string{"connect to postgres at " + silent, "no answer within db.connect-timeout=500ms"}},
		{"mysql bad dsn", db.MySQL, fmt.Sprintf("shoal:%s@%s/shoal", password, addr),
			[]string{"not a valid mysql DSN"}},
		{"postgres bad dsn", db.Postgres, fmt.Sprintf("postgres://shoal:%s@%s:x/shoal", password, host),
			[]string{"not a valid postgres DSN"}},
		{"sqlite directory is a file", db.SQLite, filepath.Join(os.Args[0], "shoal.db"),
			[]string{"db: create directory for sqlite file"}},
	}
	if dsn := os.Getenv(dbtest.EnvMySQL); dsn != "" {
		mc, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		mc.User, mc.Passwd = "shoal_no_such_user", password
		tests = append(tests, test{"mysql wrong password", db.MySQL, mc.FormatDSN(), []string{"connect to mysql at " + mc.Addr, "Access denied"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := dbtest.Config(t, db.SQLite)
			cfg.Driver, cfg.DSN, cfg.ConnectTimeout = tt.driver, tt.dsn, 500*time.Millisecond
			gdb, err := db.Open(context.Background(), cfg, testlog.New(t))
			if err == nil {
				sqlDB, _ := gdb.DB()
				sqlDB.Close()
				t.Fatalf("Open(%s) = nil error; want one", tt.name)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open() = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("Open() = %q; leaks the password", err)
			}
		})
	}
}
