package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Migration is one step of a component's schema. IDs sort in the order the steps
// run ("0001_create_datasets", "0002_add_image_sha256"). A released migration is
// never edited or removed, only followed by new ones.
//
// Up runs inside a transaction and must use tx. Write one statement per Exec: the
// MySQL and PostgreSQL drivers reject several. MySQL commits each DDL statement
// on its own, so there a migration that fails halfway leaves its earlier
// statements applied; keep MySQL-facing migrations to one DDL statement, or make
// them idempotent (IF NOT EXISTS).
type Migration struct {
	ID string
	Up func(tx *gorm.DB) error
}

// AddColumn is a migration step that adds model's field to its table, also
// idempotent. Pass a type frozen for that migration, holding the field.
func AddColumn(model any, field string) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		if tx.Migrator().HasColumn(model, field) {
			return nil
		}
		return tx.Migrator().AddColumn(model, field)
	}
}

// CreateTable is a migration step that creates model's table. It is
// idempotent, since MySQL commits DDL at once and a failed migration may
// have left its table behind. Pass a type frozen for that migration, so later
// changes to the runtime rows cannot change what a released migration does.
func CreateTable(model any) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		if tx.Migrator().HasTable(model) {
			return nil
		}
		return tx.Migrator().CreateTable(model)
	}
}

// Errors Migrate returns, for errors.Is.
var (
	ErrInvalidMigrations = errors.New("invalid migration list")
	ErrSchemaTooNew      = errors.New("database schema is newer than this binary")
	ErrSchemaGap         = errors.New("database schema skipped a migration")
)

// migrationsTable records what ran. One table serves every component.
const migrationsTable = "shoal_schema_migrations"

type schemaMigration struct {
	Component string    `gorm:"primaryKey;size:64"`
	ID        string    `gorm:"primaryKey;size:128"`
	AppliedAt time.Time `gorm:"not null"`
}

func (schemaMigration) TableName() string { return migrationsTable }

// lockWait bounds the wait for another process's migrations.
const lockWait = 5 * time.Minute

var errLockTimeout = fmt.Errorf("migration lock: not acquired within %s: is another process stuck migrating?", lockWait)

// Session-level locks for the servers, as queries answering 1 on success. Both
// are scoped to one database, as the migrations table is: PostgreSQL scopes
// advisory locks itself; MySQL's GET_LOCK names are server-wide, so the database
// name is part of it (hashed: names are limited to 64 characters). GET_LOCK
// answers 0 on timeout rather than failing.
const (
	pgLockKey   = 0x73686f616c // "shoal"
	mysqlLockID = "CONCAT('shoal_migrate.', MD5(COALESCE(DATABASE(), '')))"
)

// Migrate applies, in order, the migrations of component that the database has
// not recorded yet, each in its own transaction together with its record. It
// holds a database-wide lock meanwhile, so processes starting together are safe.
//
// It refuses, changing nothing, a list that is not strictly increasing, and a
// database that has, among the list's migrations, one of component the list
// lacks (ErrSchemaTooNew: another binary migrated it) or that skipped one
// (ErrSchemaGap). A database with every migration of the list and newer ones
// after them is a newer release's: Migrate logs a warning and runs nothing,
// so that the previous release keeps running during a rolling update.
func Migrate(ctx context.Context, db *gorm.DB, component string, migs []Migration) error {
	if err := checkMigrations(component, migs); err != nil {
		return fmt.Errorf("db: migrate %s: %w", component, err)
	}
	err := withMigrationLock(ctx, db.WithContext(ctx), func(conn *gorm.DB) error {
		if !conn.Migrator().HasTable(&schemaMigration{}) {
			if err := conn.Migrator().CreateTable(&schemaMigration{}); err != nil {
				return fmt.Errorf("create %s: %w", migrationsTable, err)
			}
		}
		var applied []string
		if err := conn.Model(&schemaMigration{}).Where("component = ?", component).Pluck("id", &applied).Error; err != nil {
			return fmt.Errorf("read %s: %w", migrationsTable, err)
		}
		slices.Sort(applied) // Go's order, not the column collation's
		pending, newer, err := pendingMigrations(migs, applied)
		if err != nil {
			return err
		}
		if len(newer) > 0 {
			// A rolling update runs the previous release next to the new one
			// on the new one's schema, and restarts its processes there;
			// migrations only add (tests/upgrade checks it), so that works.
			conn.Logger.Warn(ctx, "%s: the database has migrations %v that this binary does not know: "+
				"a newer release of shoal added them; running on that schema", component, newer)
		}
		for _, m := range pending {
			err := conn.Transaction(func(tx *gorm.DB) error {
				if err := m.Up(tx); err != nil {
					return err
				}
				return tx.Create(&schemaMigration{Component: component, ID: m.ID, AppliedAt: time.Now().UTC()}).Error
			})
			if err != nil && conn.Dialector.Name() == string(MySQL) {
				return fmt.Errorf("%s (MySQL commits DDL statements at once: any this migration ran before failing stay applied; undo them before retrying): %w", m.ID, err)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", m.ID, err)
			}
			conn.Logger.Info(ctx, "applied migration %s/%s", component, m.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("db: migrate %s: %w", component, err)
	}
	return nil
}

// checkMigrations rejects lists whose order would be ambiguous. IDs are limited to
// lowercase letters, digits and '_' so that every dialect compares them as Go does
// (MySQL's default collation ignores case).
func checkMigrations(component string, migs []Migration) error {
	if !validName(component, 64) {
		return fmt.Errorf("%w: component %q must be 1-64 characters of a-z, 0-9 and _", ErrInvalidMigrations, component)
	}
	for i, m := range migs {
		switch {
		case !validName(m.ID, 128):
			return fmt.Errorf("%w: migration #%d: ID %q must be 1-128 characters of a-z, 0-9 and _", ErrInvalidMigrations, i+1, m.ID)
		case m.Up == nil:
			return fmt.Errorf("%w: migration %s has no Up", ErrInvalidMigrations, m.ID)
		case i > 0 && m.ID <= migs[i-1].ID:
			return fmt.Errorf("%w: migration %s comes after %s: IDs must be unique and increasing", ErrInvalidMigrations, m.ID, migs[i-1].ID)
		}
	}
	return nil
}

func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// pendingMigrations returns the migrations after the applied ones, which (sorted)
// must start with the whole list or be its first len(applied). Applied ones
// after the whole list are newer, returned apart: a newer release added them.
func pendingMigrations(migs []Migration, applied []string) (pending []Migration, newer []string, err error) {
	for i, id := range applied {
		if i < len(migs) && migs[i].ID == id {
			continue
		}
		if i >= len(migs) {
			return nil, applied[i:], nil
		}
		if !slices.ContainsFunc(migs, func(m Migration) bool { return m.ID == id }) {
			return nil, nil, fmt.Errorf("%w: the database has migration %s, which this binary does not know, "+
				"in place of its %s: run the version of shoal that migrated it", ErrSchemaTooNew, id, migs[i].ID)
		}
		return nil, nil, fmt.Errorf("%w: the database has migration %s but not %s before it: "+
			"migrations must only be added after the last released one", ErrSchemaGap, id, migs[i].ID)
	}
	return migs[len(applied):], nil, nil
}

// withMigrationLock runs fn while holding the database's migration lock, on a
// connection that fn must use for everything.
func withMigrationLock(ctx context.Context, db *gorm.DB, fn func(conn *gorm.DB) error) error {
	switch name := db.Dialector.Name(); name {
	case string(SQLite):
		// Open makes every SQLite transaction BEGIN IMMEDIATE, which takes the file's
		// write lock at once: the whole run is one transaction that excludes other
		// writers (handles and processes alike) until it commits, and each migration
		// is a savepoint inside it. Were BEGIN deferred, racing migrators would get
		// SQLITE_BUSY, never a double run.
		var runErr error
		err := db.Transaction(func(tx *gorm.DB) error {
			runErr = fn(tx)
			return nil // commit the migrations before a failed one, as on the servers
		})
		return errors.Join(runErr, err)
	case string(Postgres):
		return sessionLock{
			lock:   fmt.Sprintf("SELECT 1 FROM (SELECT pg_advisory_lock(%d)) AS l", pgLockKey),
			unlock: fmt.Sprintf("SELECT CASE WHEN pg_advisory_unlock(%d) THEN 1 ELSE 0 END", pgLockKey),
		}.run(ctx, db, fn)
	case string(MySQL):
		return sessionLock{
			lock:   fmt.Sprintf("SELECT GET_LOCK(%s, %d)", mysqlLockID, int(lockWait.Seconds())),
			unlock: "SELECT RELEASE_LOCK(" + mysqlLockID + ")",
		}.run(ctx, db, fn)
	default:
		return fmt.Errorf("no migration lock for dialect %q", name)
	}
}

// sessionLock is a lock held by a database session (connection): lock and unlock
// are queries that answer 1 on success.
type sessionLock struct{ lock, unlock string }

// run takes the lock on one pooled connection, runs fn on that connection and
// releases the lock. Should the release fail (say ctx ended), the connection is
// discarded, which ends the session and so its lock.
func (l sessionLock) run(ctx context.Context, db *gorm.DB, fn func(*gorm.DB) error) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	sc, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer sc.Close()

	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	var got sql.NullInt64
	if err := sc.QueryRowContext(lctx, l.lock).Scan(&got); err != nil {
		if ctx.Err() == nil && lctx.Err() != nil {
			return errLockTimeout
		}
		return fmt.Errorf("migration lock: %w", err)
	}
	if got.Int64 != 1 { // GET_LOCK's own timeout
		return errLockTimeout
	}
	defer func() {
		// Release even when ctx has ended, or the lock would outlive this call.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released sql.NullInt64
		if uerr := sc.QueryRowContext(uctx, l.unlock).Scan(&released); uerr != nil || released.Int64 != 1 {
			_ = sc.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()

	conn := db.Session(&gorm.Session{NewDB: true, Context: ctx})
	conn.Statement.ConnPool = sc // as gorm's DB.Connection does
	return fn(conn)
}
