package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc/grpclog"
)

// SetGRPCLogger routes what gRPC and the REST gateway log through log, so
// that their warnings and errors (a REST body that does not decode, a
// connection that fails) come out in the process's format and level
// rather than as plain lines on stderr. gRPC's info messages (connection
// state changes) are logged at debug. It must be called before any gRPC
// activity.
func SetGRPCLogger(log *slog.Logger) {
	grpclog.SetLoggerV2(NewGRPCLogger(log))
}

// NewGRPCLogger is the logger SetGRPCLogger installs.
func NewGRPCLogger(log *slog.Logger) grpclog.LoggerV2 {
	return grpcLogger{log: log.With("component", "grpc")}
}

type grpcLogger struct{ log *slog.Logger }

func (l grpcLogger) at(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l grpcLogger) Info(args ...any)   { l.at(slog.LevelDebug, fmt.Sprint(args...)) }
func (l grpcLogger) Infoln(args ...any) { l.at(slog.LevelDebug, sprintln(args...)) }
func (l grpcLogger) Infof(format string, args ...any) {
	l.at(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l grpcLogger) Warning(args ...any)   { l.at(slog.LevelWarn, fmt.Sprint(args...)) }
func (l grpcLogger) Warningln(args ...any) { l.at(slog.LevelWarn, sprintln(args...)) }
func (l grpcLogger) Warningf(format string, args ...any) {
	l.at(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (l grpcLogger) Error(args ...any)   { l.at(slog.LevelError, fmt.Sprint(args...)) }
func (l grpcLogger) Errorln(args ...any) { l.at(slog.LevelError, sprintln(args...)) }
func (l grpcLogger) Errorf(format string, args ...any) {
	l.at(slog.LevelError, fmt.Sprintf(format, args...))
}
func (l grpcLogger) Fatal(args ...any)                 { l.Error(args...); os.Exit(1) }
func (l grpcLogger) Fatalln(args ...any)               { l.Errorln(args...); os.Exit(1) }
func (l grpcLogger) Fatalf(format string, args ...any) { l.Errorf(format, args...); os.Exit(1) }

// V reports whether gRPC's verbose messages of level v are wanted: only
// level 0, and only when debug is on.
func (l grpcLogger) V(v int) bool {
	return v <= 0 && l.log.Enabled(context.Background(), slog.LevelDebug)
}

// sprintln is fmt.Sprintln without the trailing newline.
func sprintln(args ...any) string {
	s := fmt.Sprintln(args...)
	return s[:len(s)-1]
}
