package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

// slogLogger sends gorm's logs to slog. Which levels show is the slog handler's
// business, so LogMode is a no-op.
type slogLogger struct {
	log  *slog.Logger
	slow time.Duration // 0: never warn
}

var (
	_ gormlogger.Interface = slogLogger{}
	_ gorm.ParamsFilter    = slogLogger{}
)

func newLogger(log *slog.Logger, slow time.Duration) slogLogger {
	return slogLogger{log: log.With("component", "db"), slow: slow}
}

func (l slogLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l slogLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.InfoContext(ctx, fmt.Sprintf(msg, args...))
}

func (l slogLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(msg, args...))
}

func (l slogLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, fmt.Sprintf(msg, args...))
}

// Trace logs one statement. Failures go to debug only: the error travels up to the
// RPC interceptor, which logs it once with the request.
func (l slogLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	level, msg := slog.LevelDebug, "sql"
	switch {
	case l.slow > 0 && elapsed > l.slow:
		level, msg = slog.LevelWarn, "slow sql"
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		msg = "sql failed"
	}
	if !l.log.Enabled(ctx, level) {
		return // skip building the SQL text
	}
	sql, rows := fc()
	attrs := []any{"sql", sql, "rows", rows, "elapsed", elapsed}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	l.log.Log(ctx, level, msg, attrs...)
}

// ParamsFilter keeps bound values out of logged SQL: they are user data, and
// placeholders make slow queries group by shape. (gorm bypasses it for
// Raw(...).Scan, whose SQL it records with values through its own recorder.)
func (l slogLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
