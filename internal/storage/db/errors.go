package db

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"net/url"
	"strings"

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

// IsUnavailable reports a database that cannot be reached or is not
// taking work right now: the connection was refused, broken or timed
// out, the server is shutting down or starting, has no connection slot
// left, or (SQLite) the file is locked or cannot be read. Trying again
// later is the remedy, so clients see UNAVAILABLE.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		connect *pgconn.ConnectError
		op      *net.OpError
		u       *url.Error
	)
	switch {
	case errors.As(err, &connect), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, mysql.ErrInvalidConn):
		return true
	case errors.As(err, &op) && !errors.As(err, &u):
		// A dial or read of a database connection (the MySQL driver's
		// errors are bare); one inside a url.Error is an HTTP call's.
		return true
	}
	switch code := driverCode(err).(type) {
	case int:
		switch code & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	case uint16:
		return code == 1040 || code == 1053 // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN
	case string:
		// Class 08 is connection exceptions; 57P01-03 are admin and crash
		// shutdown and "cannot connect now" (starting up); 53300 is
		// too_many_connections.
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
	}
	return false
}

// IsDiskFull reports a write the database refused for lack of disk space.
func IsDiskFull(err error) bool {
	switch code := driverCode(err).(type) {
	case int:
		return code&0xff == sqlite3.SQLITE_FULL
	case uint16:
		return code == 1021 || code == 1114 // ER_DISK_FULL, ER_RECORD_FILE_FULL
	case string:
		return code == "53100" // disk_full
	}
	return false
}
