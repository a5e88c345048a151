package upgrade_test

import (
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/storage/db/upgrade"
)

func ptr(s string) *string { return &s }

func TestCheck(t *testing.T) {
	base := func() upgrade.Schema {
		return upgrade.Schema{"things": {
			Columns: map[string]upgrade.Column{
				"id":    {Type: "int8", Length: 64, PrimaryKey: true},
				"name":  {Type: "varchar", Length: 63},
				"count": {Type: "int4", Length: 32},
				"ratio": {Type: "float4"},
				"note":  {Type: "text", Nullable: true},
				"state": {Type: "varchar", Length: 16, Default: ptr("'new'")},
			},
			Indexes: map[string]upgrade.Index{
				"things_pkey": {Columns: []string{"id"}, PrimaryKey: true},
				"things_name": {Columns: []string{"name"}, Unique: true},
			},
		}}
	}
	tests := []struct {
		name   string
		change func(s upgrade.Schema)
		want   string // a substring of the one problem; "" for none
	}{
		{"unchanged", func(upgrade.Schema) {}, ""},
		{"new table", func(s upgrade.Schema) {
			s["others"] = upgrade.Table{Columns: map[string]upgrade.Column{"k": {Type: "text"}},
				Indexes: map[string]upgrade.Index{"others_k": {Columns: []string{"k"}, Unique: true}}}
		}, ""},
		{"new nullable column", func(s upgrade.Schema) { s["things"].Columns["extra"] = upgrade.Column{Type: "text", Nullable: true} }, ""},
		{"new NOT NULL column with a default", func(s upgrade.Schema) {
			s["things"].Columns["extra"] = upgrade.Column{Type: "text", Default: ptr("''")}
		}, ""},
		{"varchar widened", func(s upgrade.Schema) { s["things"].Columns["name"] = upgrade.Column{Type: "varchar", Length: 255} }, ""},
		{"varchar to text", func(s upgrade.Schema) { s["things"].Columns["name"] = upgrade.Column{Type: "text"} }, ""},
		{"integer widened", func(s upgrade.Schema) { s["things"].Columns["count"] = upgrade.Column{Type: "int8", Length: 64} }, ""},
		{"float widened", func(s upgrade.Schema) { s["things"].Columns["ratio"] = upgrade.Column{Type: "float8"} }, ""},
		{"column made nullable", func(s upgrade.Schema) {
			s["things"].Columns["count"] = upgrade.Column{Type: "int4", Length: 32, Nullable: true}
		}, ""},
		{"new index, not unique", func(s upgrade.Schema) {
			s["things"].Indexes["things_count"] = upgrade.Index{Columns: []string{"count"}}
		}, ""},
		{"unique index renamed", func(s upgrade.Schema) {
			delete(s["things"].Indexes, "things_name")
			s["things"].Indexes["things_name_key"] = upgrade.Index{Columns: []string{"name"}, Unique: true}
		}, ""},

		{"table dropped", func(s upgrade.Schema) { delete(s, "things") }, "table things was dropped or renamed"},
		{"column dropped", func(s upgrade.Schema) { delete(s["things"].Columns, "note") }, "column things.note was dropped or renamed"},
		{"new NOT NULL column without a default", func(s upgrade.Schema) { s["things"].Columns["extra"] = upgrade.Column{Type: "text"} },
			"new column things.extra is NOT NULL without a default"},
		{"varchar narrowed", func(s upgrade.Schema) { s["things"].Columns["name"] = upgrade.Column{Type: "varchar", Length: 32} },
			"narrowed: type changed from varchar(63) to varchar(32)"},
		{"text to varchar", func(s upgrade.Schema) {
			s["things"].Columns["note"] = upgrade.Column{Type: "varchar", Length: 255, Nullable: true}
		},
			"narrowed: type changed from text to varchar(255)"},
		{"integer narrowed", func(s upgrade.Schema) { s["things"].Columns["count"] = upgrade.Column{Type: "int2", Length: 16} },
			"narrowed: type changed from int4(32) to int2(16)"},
		{"float narrowed", func(s upgrade.Schema) {
			s["things"].Columns["ratio"] = upgrade.Column{Type: "float4"}
			s["things"].Columns["count"] = upgrade.Column{Type: "float4"}
		},
			"type changed from int4(32) to float4"},
		{"type changed across families", func(s upgrade.Schema) { s["things"].Columns["count"] = upgrade.Column{Type: "varchar", Length: 32} },
			"type changed from int4(32) to varchar(32)"},
		{"column made NOT NULL", func(s upgrade.Schema) { s["things"].Columns["note"] = upgrade.Column{Type: "text"} }, "column things.note was made NOT NULL"},
		{"default dropped", func(s upgrade.Schema) { s["things"].Columns["state"] = upgrade.Column{Type: "varchar", Length: 16} }, "lost its default"},
		{"new unique index", func(s upgrade.Schema) {
			s["things"].Indexes["things_count"] = upgrade.Index{Columns: []string{"count"}, Unique: true}
		}, "new unique index things_count on things[count]"},
		{"index made unique", func(s upgrade.Schema) {
			s["things"].Indexes["things_name"] = upgrade.Index{Columns: []string{"name", "count"}, Unique: true}
		}, "new unique index things_name on things[name count]"},
		{"primary key changed", func(s upgrade.Schema) {
			s["things"].Indexes["things_pkey"] = upgrade.Index{Columns: []string{"id", "name"}, PrimaryKey: true}
		}, "primary key changed from [id] to [id name]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base()
			tt.change(next)
			got := upgrade.Check(base(), next)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("Check = %q; want no problem", got)
			case tt.want != "" && (len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), tt.want)):
				t.Errorf("Check = %q; want a problem containing %q", got, tt.want)
			}
		})
	}
}

// The frozen types of the migrations below.
type v1Thing struct {
	ID    int64   `gorm:"primaryKey;autoIncrement"`
	Name  string  `gorm:"size:63;not null"`
	Count int64   `gorm:"not null"`
	Note  *string `gorm:"size:255"`
	When  time.Time
}

func (v1Thing) TableName() string { return "upgrade_things" }

type v2Extra struct {
	Extra *string `gorm:"size:32"`
}

func (v2Extra) TableName() string { return "upgrade_things" }

type v2ExtraDefault struct {
	Extra string `gorm:"size:32;not null;default:''"`
}

func (v2ExtraDefault) TableName() string { return "upgrade_things" }

type v2ExtraRequired struct {
	Extra string `gorm:"size:32;not null"`
}

func (v2ExtraRequired) TableName() string { return "upgrade_things" }

type v2WideName struct {
	Name string `gorm:"size:255;not null"`
}

func (v2WideName) TableName() string { return "upgrade_things" }

type v2NarrowName struct {
	Name string `gorm:"size:16;not null"`
}

func (v2NarrowName) TableName() string { return "upgrade_things" }

type v2SmallCount struct {
	Count int16 `gorm:"not null"`
}

func (v2SmallCount) TableName() string { return "upgrade_things" }

type v2RequiredNote struct {
	Note string `gorm:"size:255;not null"`
}

func (v2RequiredNote) TableName() string { return "upgrade_things" }

type v2UniqueName struct {
	Name string `gorm:"size:63;not null;uniqueIndex:upgrade_things_name"`
}

func (v2UniqueName) TableName() string { return "upgrade_things" }

type v2Other struct {
	ID  int64  `gorm:"primaryKey;autoIncrement"`
	Key string `gorm:"size:63;not null;uniqueIndex:upgrade_others_key"`
}

func (v2Other) TableName() string { return "upgrade_others" }

// TestCheckOnServers runs real migrations, of each kind, on a database
// with a row in it, on every dialect: the compatible ones pass, and each
// breaking one either fails on the existing row or is named by Check.
func TestCheckOnServers(t *testing.T) {
	v1 := db.Migration{ID: "0001_create_things", Up: db.CreateTable(&v1Thing{})}
	tests := []struct {
		name string
		up   func(tx *gorm.DB) error
		want string // a substring of a problem; "" for none
		// sqlite: what SQLite reports instead, where its types cannot
		// show the change (its strings and integers have one size).
		sqlite *string
	}{
		{"new nullable column", db.AddColumn(&v2Extra{}, "Extra"), "", nil},
		{"new column with a default", db.AddColumn(&v2ExtraDefault{}, "Extra"), "", nil},
		{"new table with a unique index", db.CreateTable(&v2Other{}), "", nil},
		{"varchar widened", func(tx *gorm.DB) error { return tx.Migrator().AlterColumn(&v2WideName{}, "Name") }, "", nil},

		{"table dropped", func(tx *gorm.DB) error { return tx.Migrator().DropTable("upgrade_things") }, "table upgrade_things was dropped", nil},
		{"column dropped", func(tx *gorm.DB) error { return tx.Migrator().DropColumn(&v1Thing{}, "Note") }, "column upgrade_things.note was dropped or renamed", nil},
		{"column renamed", func(tx *gorm.DB) error { return tx.Migrator().RenameColumn(&v1Thing{}, "note", "remark") }, "column upgrade_things.note was dropped or renamed", nil},
		{"new NOT NULL column without a default", db.AddColumn(&v2ExtraRequired{}, "Extra"), "NOT NULL without a default", nil},
		{"varchar narrowed", func(tx *gorm.DB) error { return tx.Migrator().AlterColumn(&v2NarrowName{}, "Name") }, "narrowed", ptr("")},
		{"integer narrowed", func(tx *gorm.DB) error { return tx.Migrator().AlterColumn(&v2SmallCount{}, "Count") }, "narrowed", ptr("")},
		{"column made NOT NULL", func(tx *gorm.DB) error { return tx.Migrator().AlterColumn(&v2RequiredNote{}, "Note") }, "was made NOT NULL", nil},
		{"new unique index", func(tx *gorm.DB) error { return tx.Migrator().CreateIndex(&v2UniqueName{}, "upgrade_things_name") }, "new unique index upgrade_things_name", nil},
	}
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := tt.want
				if cfg.Driver == db.SQLite && tt.sqlite != nil {
					want = *tt.sqlite
				}
				gdb := dbtest.Open(t, dbtest.Config(t, cfg.Driver))
				if err := db.Migrate(t.Context(), gdb, "upgrade", []db.Migration{v1}); err != nil {
					t.Fatal(err)
				}
				prev, err := upgrade.Inspect(gdb)
				if err != nil {
					t.Fatal(err)
				}
				if err := upgrade.Seed(gdb, prev, "shoal_schema_migrations"); err != nil {
					t.Fatal(err)
				}
				err = db.Migrate(t.Context(), gdb, "upgrade", []db.Migration{v1, {ID: "0002_change", Up: tt.up}})
				if err != nil {
					if want == "" {
						t.Fatalf("Migrate(%s) on a database with a row = %v; want it to succeed", tt.name, err)
					}
					t.Logf("Migrate(%s) on a database with a row fails: %v", tt.name, err)
					return
				}
				next, err := upgrade.Inspect(gdb)
				if err != nil {
					t.Fatal(err)
				}
				got := upgrade.Check(prev, next)
				switch {
				case want == "" && len(got) > 0:
					t.Errorf("Check after %s = %q; want no problem", tt.name, got)
				case want != "" && !strings.Contains(strings.Join(got, "\n"), want):
					t.Errorf("Check after %s = %q; want a problem containing %q", tt.name, got, want)
				}
			})
		}
	})
}
