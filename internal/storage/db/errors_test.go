package db_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

type owner struct {
	ID   int64
	Name string `gorm:"size:64;uniqueIndex"`
}

type pet struct {
	ID      int64
	OwnerID int64
	Owner   owner
}

func TestErrorClassification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		gdb := dbtest.Open(t, cfg).WithContext(t.Context())
		err := db.Migrate(t.Context(), gdb, "errtest", []db.Migration{{ID: "0001_owners_pets", Up: func(tx *gorm.DB) error {
			return tx.AutoMigrate(&owner{}, &pet{})
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := gdb.Create(&owner{ID: 1, Name: "ada"}).Error; err != nil {
			t.Fatal(err)
		}

		var o owner
		var n int
		tests := []struct {
			name                 string
			err                  error
			unique, fk, notFound bool
		}{
			{"unique column", gdb.Create(&owner{ID: 2, Name: "ada"}).Error, true, false, false},
			{"primary key", gdb.Create(&owner{ID: 1, Name: "bob"}).Error, true, false, false},
			{"wrapped", fmt.Errorf("store: %w", gdb.Create(&owner{ID: 3, Name: "ada"}).Error), true, false, false},
			{"missing parent", gdb.Create(&pet{ID: 1, OwnerID: 99}).Error, false, true, false},
			{"first of none", gdb.First(&o, 42).Error, false, false, true},
			{"raw scan of none", gdb.Raw("SELECT id FROM owners WHERE id = 42").Row().Scan(&n), false, false, true},
			{"gorm sentinel", fmt.Errorf("x: %w", gorm.ErrDuplicatedKey), true, false, false},
			{"syntax error", gdb.Exec("SELEC 1").Error, false, false, false},
			{"other", errors.New("disk full"), false, false, false},
			{"nil", nil, false, false, false},
		}
		for _, tt := range tests {
			if tt.err == nil && tt.name != "nil" {
				t.Errorf("%s: got no error; want one", tt.name)
				continue
			}
			if got := db.IsUniqueViolation(tt.err); got != tt.unique {
				t.Errorf("%s: IsUniqueViolation(%v) = %v; want %v", tt.name, tt.err, got, tt.unique)
			}
			if got := db.IsForeignKeyViolation(tt.err); got != tt.fk {
				t.Errorf("%s: IsForeignKeyViolation(%v) = %v; want %v", tt.name, tt.err, got, tt.fk)
			}
			if got := db.IsNotFound(tt.err); got != tt.notFound {
				t.Errorf("%s: IsNotFound(%v) = %v; want %v", tt.name, tt.err, got, tt.notFound)
			}
		}
	})
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1213}, true},
		{&mysql.MySQLError{Number: 1062}, false},
		{fmt.Errorf("tx: %w", &pgconn.PgError{Code: "40P01"}), true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{errors.New("connection reset"), false},
	}
	for _, tt := range tests {
		if got := db.IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}

// TestIsUnavailable: each driver's error for a server nobody listens on,
// and the server's own codes for shutting down, are UNAVAILABLE; a SQLite
// database that reached its size limit is full; query errors are neither.
func TestIsUnavailable(t *testing.T) {
	closed := func(d db.Driver, dsn string) error {
		cfg := dbtest.Config(t, db.SQLite) // for the defaults
		cfg.Driver, cfg.DSN, cfg.ConnectTimeout = d, dsn, 5*time.Second
		_, err := db.Open(t.Context(), cfg, nil)
		if err == nil {
			t.Fatalf("db.Open(%s at a closed port) = nil error", d)
		}
		return err
	}
	addr := closedPort(t)
	tests := []struct {
		name              string
		err               error
		unavailable, full bool
	}{
		{"postgres refused", closed(db.Postgres, "postgres://u@"+addr+"/x?sslmode=disable"), true, false},
		{"mysql refused", closed(db.MySQL, "u:p@tcp("+addr+")/x"), true, false},
		{"postgres admin shutdown", fmt.Errorf("q: %w", &pgconn.PgError{Code: "57P01"}), true, false},
		{"postgres connection failure", &pgconn.PgError{Code: "08006"}, true, false},
		{"postgres too many connections", &pgconn.PgError{Code: "53300"}, true, false},
		{"postgres disk full", &pgconn.PgError{Code: "53100"}, false, true},
		{"mysql shutdown", &mysql.MySQLError{Number: 1053}, true, false},
		{"mysql invalid connection", fmt.Errorf("q: %w", mysql.ErrInvalidConn), true, false},
		{"mysql table full", &mysql.MySQLError{Number: 1114}, false, true},
		{"bad connection", fmt.Errorf("q: %w", driver.ErrBadConn), true, false},
		{"sqlite full", sqliteFull(t), false, true},
		{"postgres syntax", &pgconn.PgError{Code: "42601"}, false, false},
		{"unique", &mysql.MySQLError{Number: 1062}, false, false},
		{"other", errors.New("connection reset"), false, false},
		{"nil", nil, false, false},
	}
	for _, tt := range tests {
		if got := db.IsUnavailable(tt.err); got != tt.unavailable {
			t.Errorf("%s: IsUnavailable(%v) = %v; want %v", tt.name, tt.err, got, tt.unavailable)
		}
		if got := db.IsDiskFull(tt.err); got != tt.full {
			t.Errorf("%s: IsDiskFull(%v) = %v; want %v", tt.name, tt.err, got, tt.full)
		}
	}
}

// sqliteFull fills a SQLite database that may not grow past a few pages,
// which fails the way a full disk does (SQLITE_FULL).
func sqliteFull(t *testing.T) error {
	t.Helper()
	gdb := dbtest.Open(t, dbtest.Config(t, db.SQLite)).WithContext(t.Context())
	if err := gdb.Exec("CREATE TABLE blobs (b BLOB)").Error; err != nil {
		t.Fatal(err)
	}
	var pages int64
	if err := gdb.Raw("PRAGMA page_count").Scan(&pages).Error; err != nil {
		t.Fatal(err)
	}
	if err := gdb.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+2)).Error; err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := gdb.Exec("INSERT INTO blobs VALUES (zeroblob(4096))").Error; err != nil {
			return err
		}
	}
	t.Fatal("a SQLite database capped at a few pages took 100 pages of rows")
	return nil
}
