package app_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/app"
)

func TestGRPCLogsInTheProcessFormat(t *testing.T) {
	var buf bytes.Buffer
	cfg := defaults(t)
	cfg.LogFormat, cfg.LogLevel = "json", "info"
	// The logger itself, not gRPC's global: swapping that while other
	// tests' connections log is a data race.
	l := app.NewGRPCLogger(app.NewLogger(cfg, &buf))
	l.Infof("channel %d: state changed", 7) // debug: not shown at info
	l.Errorf("Failed to decode request: %v", "unexpected EOF")
	l.Warningln("transport", "closing")
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("logged %d lines; want 2 (the info message is debug):\n%s", len(lines), buf.String())
	}
	if lines[0]["level"] != "ERROR" || lines[0]["msg"] != "Failed to decode request: unexpected EOF" || lines[0]["component"] != "grpc" {
		t.Errorf("first line = %v; want the error, component grpc", lines[0])
	}
	if lines[1]["level"] != "WARN" || lines[1]["msg"] != "transport closing" {
		t.Errorf("second line = %v; want the warning", lines[1])
	}
}
