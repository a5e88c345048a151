package config_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/config"
)

type settings struct {
	driver  string
	conns   int
	timeout time.Duration
	target  string
}

func newFlags(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	fs.StringVar(&s.driver, "db.driver", "sqlite", "")
	fs.IntVar(&s.conns, "db.max-open-conns", 16, "")
	fs.DurationVar(&s.timeout, "server.shutdown-timeout", 15*time.Second, "")
	fs.StringVar(&s.target, "target", "all", "")
	return fs
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shoal.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "db:\n  driver: mysql\n  max-open-conns: 4\nserver:\n  shutdown-timeout: 3s\ntarget: [dataset, registry]\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want settings
	}{
		{"defaults", nil, nil, settings{"sqlite", 16, 15 * time.Second, "all"}},
		{"file over defaults", []string{"--config.file=" + file}, nil, settings{"mysql", 4, 3 * time.Second, "dataset,registry"}},
		{"file named by env", nil, map[string]string{"SHOAL_CONFIG_FILE": file}, settings{"mysql", 4, 3 * time.Second, "dataset,registry"}},
		{"env over file", []string{"-config.file", file}, map[string]string{"SHOAL_DB_DRIVER": "postgres", "SHOAL_DB_MAX_OPEN_CONNS": "8"}, settings{"postgres", 8, 3 * time.Second, "dataset,registry"}},
		{"flags over env", []string{"--config.file", file, "--db.driver=sqlite", "--target", "inference"}, map[string]string{"SHOAL_DB_DRIVER": "postgres"}, settings{"sqlite", 4, 3 * time.Second, "inference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			if err := config.Load(newFlags(&got), tt.args, env(tt.env)); err != nil {
				t.Fatalf("Load(%q) = %v", tt.args, err)
			}
			if got != tt.want {
				t.Errorf("Load(%q, env %v) = %+v; want %+v", tt.args, tt.env, got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string
		env  map[string]string
		want string
	}{
		{name: "unknown key", file: "db:\n  drvier: mysql\n", want: `unknown setting "db.drvier"`},
		{name: "bad value in file", file: "db:\n  max-open-conns: many\n", want: "db.max-open-conns"},
		{name: "bad value in env", env: map[string]string{"SHOAL_SERVER_SHUTDOWN_TIMEOUT": "soon"}, want: "SHOAL_SERVER_SHUTDOWN_TIMEOUT"},
		{name: "not yaml", file: "db: [unclosed\n", want: "config file"},
		{name: "missing file", args: []string{"--config.file=/nonexistent/shoal.yaml"}, want: "no such file"},
		{name: "stray argument", args: []string{"serve-all"}, want: `unexpected argument "serve-all"`},
		{name: "unknown flag", args: []string{"--db.drvier=x"}, want: "db.drvier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config.file", writeFile(t, tt.file)}, args...)
			}
			var s settings
			err := config.Load(newFlags(&s), args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load() = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPrintRoundTrips(t *testing.T) {
	var s settings
	fs := newFlags(&s)
	if err := config.Load(fs, []string{"--db.driver=postgres", "--target=dataset"}, env(nil)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := config.Print(&out, fs, func(name, value string) string {
		if name == "db.driver" {
			return "masked-" + value
		}
		return value
	}); err != nil {
		t.Fatal(err)
	}
	want := "db:\n  driver: masked-postgres\n  max-open-conns: 16\nserver:\n  shutdown-timeout: 15s\ntarget: dataset\n"
	if out.String() != want {
		t.Errorf("Print() =\n%s\nwant\n%s", out.String(), want)
	}
	// What Print writes is a valid config file for the same flags.
	var again settings
	if err := config.Load(newFlags(&again), []string{"--config.file", writeFile(t, strings.Replace(out.String(), "masked-", "", 1))}, env(nil)); err != nil {
		t.Fatalf("Load(printed config) = %v", err)
	}
	if again != s {
		t.Errorf("Load(Print()) = %+v; want %+v", again, s)
	}
}

// TestFileValuesAsWritten checks that values reach the flags as written,
// not as YAML would type them (0123 is octal 83 to YAML, 1e3 a float),
// and the rules for aliases, merge keys, repeats and expansion.
func TestFileValuesAsWritten(t *testing.T) {
	bomb := "a: &a {x: 1, y: 1, z: 1, w: 1, v: 1, u: 1, t: 1, s: 1, r: 1, q: 1}\n"
	for i, prev := 0, "a"; i < 5; i++ {
		name := string(rune('b' + i))
		bomb += fmt.Sprintf("%s: &%s {p: *%s, q: *%s, r: *%s, s: *%s, t: *%s, u: *%s, v: *%s, w: *%s, x: *%s, y: *%s}\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	tests := []struct {
		name, file string
		want       settings
		wantErr    string
	}{
		{name: "octal-looking string", file: "db:\n  driver: 0123\n", want: settings{"0123", 16, 15 * time.Second, "all"}},
		{name: "float-looking string", file: "target: 1e3\n", want: settings{"sqlite", 16, 15 * time.Second, "1e3"}},
		{name: "null", file: "target: ~\n", want: settings{"sqlite", 16, 15 * time.Second, ""}},
		{name: "an anchor's own keys are settings too", file: "base: &b {driver: mysql, max-open-conns: 2}\ndb:\n  <<: *b\n  max-open-conns: 3\n", wantErr: `unknown setting "base.driver"`},
		{name: "set twice", file: "db:\n  driver: a\ndb.driver: b\n", wantErr: "db.driver is set twice"},
		{name: "alias bomb", file: bomb, wantErr: "more than 10000 settings"},
		{name: "a mapping that holds itself", file: "a: &a {b: *a}\n", wantErr: "nested more than 32 levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			err := config.Load(newFlags(&s), []string{"--config.file", writeFile(t, tt.file)}, env(nil))
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Load(%q) = %v; want an error containing %q", tt.file, err, tt.wantErr)
				}
			case err != nil || s != tt.want:
				t.Errorf("Load(%q) = %+v, %v; want %+v", tt.file, s, err, tt.want)
			}
		})
	}
	// A merge whose keys are all settings: the mapping's own key wins.
	var s settings
	file := "db:\n  <<: {driver: mysql, max-open-conns: 2}\n  max-open-conns: 3\n"
	if err := config.Load(newFlags(&s), []string{"--config.file", writeFile(t, file)}, env(nil)); err != nil || s.driver != "mysql" || s.conns != 3 {
		t.Errorf("Load(%q) = %+v, %v; want driver mysql, 3 conns", file, s, err)
	}
}
