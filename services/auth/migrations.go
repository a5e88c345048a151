package auth

import (
	"slices"
	"time"

	"github.com/shoalml/shoal/internal/storage/db"
)

// schemaComponent names the service's migrations in the database's record
// of those applied.
const schemaComponent = "auth"

// Migrations returns the component name and the migrations, in order, that
// the service applies at start, for checks of the schema across releases
// (tests/upgrade).
func Migrations() (component string, migs []db.Migration) {
	return schemaComponent, slices.Clone(migrations)
}

// migrations are the service's schema versions, in order. Each creates one
// table from a type frozen here, so later changes to the runtime rows cannot
// change what a released migration does.
var migrations = []db.Migration{
	{ID: "0001_create_tokens", Up: db.CreateTable(&v1Token{})},
	{ID: "0002_create_audit_events", Up: db.CreateTable(&v1AuditEvent{})},
}

type v1Token struct {
	ID         int64     `gorm:"primaryKey;autoIncrement"`
	PublicID   string    `gorm:"size:32;not null;uniqueIndex:auth_tokens_public_id"`
	Name       string    `gorm:"size:64;not null"`
	Scopes     string    `gorm:"size:255;not null"`                                    // "predict,read"
	SecretHash string    `gorm:"size:64;not null;uniqueIndex:auth_tokens_secret_hash"` // hex SHA-256 of the secret
	CreatedBy  string    `gorm:"size:255;not null"`
	CreatedAt  time.Time `gorm:"not null"`
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

func (v1Token) TableName() string { return "auth_tokens" }

type v1AuditEvent struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	Time      time.Time `gorm:"not null;index:auth_audit_events_time"`
	TokenID   string    `gorm:"size:32;not null;index:auth_audit_events_token"`
	TokenName string    `gorm:"size:255;not null"`
	Method    string    `gorm:"size:255;not null"`
	Resource  string    `gorm:"size:1024;not null"`
	Code      string    `gorm:"size:32;not null"`
	RequestID string    `gorm:"size:128;not null"`
}

func (v1AuditEvent) TableName() string { return "auth_audit_events" }
