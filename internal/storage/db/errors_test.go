package db_test

import (
	"errors"
	"fmt"
	"testing"

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
