package dataset

import (
	"slices"
	"time"

	"github.com/shoalml/shoal/internal/storage/db"
)

// schemaComponent names the service's migrations in the database's record
// of those applied.
const schemaComponent = "dataset"

// Migrations returns the component name and the migrations, in order, that
// the service applies at start, for checks of the schema across releases
// (tests/upgrade).
func Migrations() (component string, migs []db.Migration) {
	return schemaComponent, slices.Clone(migrations)
}

// migrations are the service's schema versions, in order. Each creates one
// table from a type frozen here, so later changes to the runtime models
// cannot change what a released migration does.
var migrations = []db.Migration{
	{ID: "0001_create_datasets", Up: db.CreateTable(&v1Dataset{})},
	{ID: "0002_create_images", Up: db.CreateTable(&v1Image{})},
	{ID: "0003_create_snapshots", Up: db.CreateTable(&v1Snapshot{})},
	{ID: "0004_create_snapshot_images", Up: db.CreateTable(&v1SnapshotImage{})},
	{ID: "0005_create_snapshot_counts", Up: db.CreateTable(&v1SnapshotCount{})},
}

type v1Dataset struct {
	ID          int64     `gorm:"primaryKey;autoIncrement"`
	Name        string    `gorm:"size:63;not null;uniqueIndex:dataset_datasets_name"`
	Description string    `gorm:"size:4096;not null"`
	CreatedAt   time.Time `gorm:"not null"`
	UpdatedAt   time.Time `gorm:"not null"`
}

func (v1Dataset) TableName() string { return "dataset_datasets" }

type v1Image struct {
	ID        int64     `gorm:"primaryKey;autoIncrement"`
	DatasetID int64     `gorm:"not null;uniqueIndex:dataset_images_sha,priority:1;index:dataset_images_split_label,priority:1"`
	Split     int16     `gorm:"not null;index:dataset_images_split_label,priority:2"`
	Label     string    `gorm:"size:255;not null;index:dataset_images_split_label,priority:3"`
	FileName  string    `gorm:"size:1024;not null"`
	SHA256    string    `gorm:"column:sha256;size:64;not null;uniqueIndex:dataset_images_sha,priority:2;index:dataset_images_blob"`
	Width     int32     `gorm:"not null"`
	Height    int32     `gorm:"not null"`
	Format    string    `gorm:"size:8;not null"`
	SizeBytes int64     `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (v1Image) TableName() string { return "dataset_images" }

type v1Snapshot struct {
	ID             int64     `gorm:"primaryKey;autoIncrement"`
	DatasetID      int64     `gorm:"not null;uniqueIndex:dataset_snapshots_version,priority:1"`
	Version        int64     `gorm:"not null;uniqueIndex:dataset_snapshots_version,priority:2"`
	Description    string    `gorm:"size:4096;not null"`
	ImageCount     int64     `gorm:"not null"`
	ManifestSHA256 string    `gorm:"column:manifest_sha256;size:64;not null"`
	CreatedAt      time.Time `gorm:"not null"`
}

func (v1Snapshot) TableName() string { return "dataset_snapshots" }

type v1SnapshotImage struct {
	SnapshotID int64 `gorm:"primaryKey;autoIncrement:false"`
	Pos        int64 `gorm:"primaryKey;autoIncrement:false"`
	ImageID    int64 `gorm:"not null;index:dataset_snapshot_images_image"`
}

func (v1SnapshotImage) TableName() string { return "dataset_snapshot_images" }

type v1SnapshotCount struct {
	ID         int64  `gorm:"primaryKey;autoIncrement"`
	SnapshotID int64  `gorm:"not null;index:dataset_snapshot_counts_snapshot"`
	Split      int16  `gorm:"not null"`
	Label      string `gorm:"size:255;not null"`
	Count      int64  `gorm:"not null"`
}

func (v1SnapshotCount) TableName() string { return "dataset_snapshot_counts" }
