package db

import (
	"database/sql"
	"errors"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"
)

// These classify errors from any of the three drivers, also when wrapped with %w,
// so stores can map them to gRPC codes without knowing the dialect.
//
// gorm's TranslateError option does this too, but its SQLite and MySQL translators
// replace the driver error with a bare gorm.ErrDuplicatedKey, dropping the
// constraint name from logs; so Open leaves it off and these read the driver's
// codes. They still accept gorm's sentinels in case a caller turns it on.

// IsUniqueViolation reports a unique or primary key constraint violation.
func IsUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	switch code := driverCode(err).(type) {
	case int: // SQLite extended result code
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	case uint16: // MySQL error number
		return code == 1062 // ER_DUP_ENTRY
	case string: // PostgreSQL SQLSTATE
		return code == "23505" // unique_violation
	}
	return false
}

// IsForeignKeyViolation reports a row referencing a missing row, or a delete or
// update of a row still referenced.
func IsForeignKeyViolation(err error) bool {
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return true
	}
	switch code := driverCode(err).(type) {
	case int:
		return code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	case uint16:
		return code == 1451 || code == 1452 // ER_ROW_IS_REFERENCED_2, ER_NO_REFERENCED_ROW_2
	case string:
		return code == "23503" // foreign_key_violation
	}
	return false
}

// IsRetryable reports a transaction the server aborted to break a deadlock
// or a serialisation conflict, for which running it again is the remedy.
func IsRetryable(err error) bool {
	switch code := driverCode(err).(type) {
	case uint16:
		return code == 1213 // ER_LOCK_DEADLOCK
	case string:
		return code == "40P01" || code == "40001" // deadlock_detected, serialization_failure
	}
	return false
}

// IsNotFound reports a lookup that matched no row: gorm's First/Take/Last, or a raw Scan.
func IsNotFound(err error) bool {
	return errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows)
}

// driverCode extracts the driver's own error code: int for SQLite, uint16 for
// MySQL, string for PostgreSQL, nil for anything else.
func driverCode(err error) any {
	var (
		sq *gosqlite.Error
		my *mysql.MySQLError
		pg *pgconn.PgError
	)
	switch {
	case errors.As(err, &sq):
		return sq.Code()
	case errors.As(err, &my):
		return my.Number
	case errors.As(err, &pg):
		return pg.Code
	}
	return nil
}
