package db_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

func TestLogger(t *testing.T) {
	const secret = "user-secret-value"
	tests := []struct {
		name    string
		slow    time.Duration
		query   func(*gorm.DB) error
		want    []string
		notWant []string
	}{
		{"slow query warns without bound values", time.Nanosecond,
			func(gdb *gorm.DB) error {
				var rows []map[string]any
				return gdb.Table("sqlite_master").Where("name = ?", secret).Find(&rows).Error
			},
			[]string{"level=WARN", "slow sql", "name = ?"}, []string{secret}},
		{"failed query stays below warn", time.Hour,
			func(gdb *gorm.DB) error { return gdb.Exec("SELEC ?", secret).Error },
			nil, []string{"level=WARN", "level=ERROR", secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := dbtest.Config(t, db.SQLite)
			cfg.LogSlow = tt.slow
			var buf testlog.Buffer
			gdb, err := db.Open(t.Context(), cfg, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				t.Fatal(err)
			}
			sqlDB, _ := gdb.DB()
			defer sqlDB.Close()
			_ = tt.query(gdb.WithContext(t.Context()))
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("log = %q; want it to contain %q", out, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("log = %q; want no %q", out, w)
				}
			}
		})
	}
}
