package trainer

import (
	"slices"
	"time"

	"github.com/shoalml/shoal/internal/storage/db"
)

// schemaComponent names the service's migrations in the database's record
// of those applied.
const schemaComponent = "trainer"

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
	{ID: "0001_create_jobs", Up: db.CreateTable(&v1Job{})},
	{ID: "0002_create_job_events", Up: db.CreateTable(&v1JobEvent{})},
	{ID: "0003_add_job_trace_context", Up: db.AddColumn(&v3JobTrace{}, "TraceContext")},
}

type v1Job struct {
	ID              string     `gorm:"size:36;primaryKey"`
	Dataset         string     `gorm:"size:63;not null;index:trainer_jobs_dataset"`
	State           int32      `gorm:"not null;index:trainer_jobs_state"`
	Spec            string     `gorm:"not null"` // protojson JobSpec, defaults filled in
	Error           string     `gorm:"not null"`
	CancelRequested bool       `gorm:"not null"`
	LastSequence    int64      `gorm:"not null"`
	TestMetrics     string     `gorm:"not null"` // protojson registry Metrics; empty until evaluated
	ResultModel     string     `gorm:"size:63;not null"`
	ResultVersion   int64      `gorm:"not null"`
	Owner           string     `gorm:"size:36;not null"`
	HeartbeatAt     *time.Time `gorm:"index:trainer_jobs_heartbeat"`
	CreatedAt       time.Time  `gorm:"not null"`
	StartedAt       *time.Time
	EndedAt         *time.Time
}

func (v1Job) TableName() string { return "trainer_jobs" }

type v1JobEvent struct {
	ID       int64     `gorm:"primaryKey;autoIncrement"`
	JobID    string    `gorm:"size:36;not null;uniqueIndex:trainer_job_events_seq,priority:1"`
	Sequence int64     `gorm:"not null;uniqueIndex:trainer_job_events_seq,priority:2"`
	Kind     string    `gorm:"size:16;not null"`
	Time     time.Time `gorm:"not null"`
	Payload  string    `gorm:"not null"` // protojson WatchJobResponse
}

func (v1JobEvent) TableName() string { return "trainer_job_events" }

// v3JobTrace is the column 0003 adds to trainer_jobs: the W3C trace context
// of the StartTraining call, under which the job runs (and resumes); at
// most tracing.MaxEncoded bytes.
type v3JobTrace struct {
	TraceContext string `gorm:"size:2048;not null;default:''"`
}

func (v3JobTrace) TableName() string { return "trainer_jobs" }
