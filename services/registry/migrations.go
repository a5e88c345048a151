package registry

import (
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/shoalml/shoal/internal/storage/db"
)

// schemaComponent names the service's migrations in the database's record
// of those applied.
const schemaComponent = "registry"

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
	{ID: "0001_create_models", Up: db.CreateTable(&v1Model{})},
	{ID: "0002_create_versions", Up: db.CreateTable(&v1Version{})},
	{ID: "0003_create_artifacts", Up: db.CreateTable(&v1Artifact{})},
	{ID: "0004_create_aliases", Up: db.CreateTable(&v1Alias{})},
	{ID: "0005_create_alias_events", Up: db.CreateTable(&v1AliasEvent{})},
	{ID: "0006_create_alias_revision", Up: func(tx *gorm.DB) error {
		if err := db.CreateTable(&v1AliasRevision{})(tx); err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&v1AliasRevision{ID: 1}).Error
	}},
	{ID: "0007_create_serving_replicas", Up: db.CreateTable(&v1ServingReplica{})},
	{ID: "0008_create_serving_revision", Up: func(tx *gorm.DB) error {
		if err := db.CreateTable(&v1ServingRevision{})(tx); err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&v1ServingRevision{ID: 1}).Error
	}},
}

type v1Model struct {
	ID          int64     `gorm:"primaryKey;autoIncrement"`
	Name        string    `gorm:"size:63;not null;uniqueIndex:registry_models_name"`
	Description string    `gorm:"not null"`
	Labels      string    `gorm:"not null"` // JSON array
	VersionSeq  int64     `gorm:"not null"` // last number handed out; numbers are never reused
	CreatedAt   time.Time `gorm:"not null"`
}

func (v1Model) TableName() string { return "registry_models" }

type v1Version struct {
	ID              int64     `gorm:"primaryKey;autoIncrement"`
	ModelID         int64     `gorm:"not null;uniqueIndex:registry_versions_number,priority:1;index:registry_versions_accuracy,priority:1"`
	Number          int64     `gorm:"not null;uniqueIndex:registry_versions_number,priority:2"`
	Labels          string    `gorm:"not null"` // JSON array
	InputSpec       string    `gorm:"not null"` // protojson InputSpec
	Metrics         string    `gorm:"not null"` // protojson Metrics
	TestAccuracy    float64   `gorm:"not null;index:registry_versions_accuracy,priority:2"`
	HyperParameters string    `gorm:"not null"` // JSON object
	Lineage         string    `gorm:"not null"` // protojson Lineage
	Architecture    string    `gorm:"size:255;not null"`
	Creator         string    `gorm:"size:255;not null"`
	Description     string    `gorm:"not null"`
	ArtifactSHA256  string    `gorm:"column:artifact_sha256;size:64;not null;index:registry_versions_artifact"`
	ArtifactSize    int64     `gorm:"not null"`
	CreatedAt       time.Time `gorm:"not null"`
}

func (v1Version) TableName() string { return "registry_versions" }

// v1Artifact is one stored blob. Its row is what concurrent uploads and
// deletions of the same content lock, so that a blob is never deleted
// while a version that references it is being created.
type v1Artifact struct {
	SHA256    string    `gorm:"column:sha256;primaryKey;size:64"`
	SizeBytes int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (v1Artifact) TableName() string { return "registry_artifacts" }

type v1Alias struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	ModelID   int64     `gorm:"not null;uniqueIndex:registry_aliases_name,priority:1"`
	Name      string    `gorm:"size:63;not null;uniqueIndex:registry_aliases_name,priority:2"`
	Version   int64     `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

func (v1Alias) TableName() string { return "registry_aliases" }

type v1AliasEvent struct {
	Revision  int64     `gorm:"primaryKey;autoIncrement:false;index:registry_alias_events_model,priority:2"`
	Model     string    `gorm:"size:63;not null;index:registry_alias_events_model,priority:1"`
	Alias     string    `gorm:"size:63;not null"`
	Version   int64     `gorm:"not null"`
	Type      int32     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (v1AliasEvent) TableName() string { return "registry_alias_events" }

// v1AliasRevision is a single row holding the last alias revision. Every
// alias change increments it in its own transaction, which serialises alias
// changes: revisions commit in order, so a reader that sees revision n has
// already been able to see every revision before it.
type v1AliasRevision struct {
	ID       int64 `gorm:"primaryKey;autoIncrement:false"`
	Revision int64 `gorm:"not null"`
}

func (v1AliasRevision) TableName() string { return "registry_alias_revision" }

// v1ServingReplica is an Inference replica's last report (ReportServing):
// what it serves for each alias it follows, as JSON, and until when the
// report holds.
type v1ServingReplica struct {
	Name       string    `gorm:"primaryKey;size:255"`
	Aliases    string    `gorm:"not null"` // JSON array of servingAlias
	ReportedAt time.Time `gorm:"not null"`
	ExpiresAt  time.Time `gorm:"not null;index:registry_serving_replicas_expires"`
}

func (v1ServingReplica) TableName() string { return "registry_serving_replicas" }

// v1ServingRevision is a single row counting changes of what the replicas
// serve (a report that differs from the last, a replica leaving), so that
// registry processes sharing the database learn of each other's reports
// from one cheap read, as they do of alias changes.
type v1ServingRevision struct {
	ID       int64 `gorm:"primaryKey;autoIncrement:false"`
	Revision int64 `gorm:"not null"`
}

func (v1ServingRevision) TableName() string { return "registry_serving_revision" }
