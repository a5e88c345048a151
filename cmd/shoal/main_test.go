package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/app"
)

func TestServeRefusesUnshareableStorageWhenSplit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--target=inference", "--clients.registry-address=registry:9090"}, &stdout, &stderr)
	if err == nil {
		t.Fatal("serve --target=inference on local blobs = nil error; want a configuration error")
	}
	for _, want := range []string{"invalid configuration", "--blob.backend=local", "--target=inference", "--blob.backend=s3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to contain %q", err, want)
		}
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	t.Setenv("SHOAL_BLOB_S3_SECRET_KEY", "hunter2")
	t.Setenv("SHOAL_DB_DSN", "postgres://shoal:pa55@db/shoal")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--print-config", "--db.driver=postgres"}, &stdout, &stderr); err != nil {
		t.Fatalf("serve --print-config = %v; stderr %s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"driver: postgres", "secret-key: '****'", "dsn: postgres://shoal:xxxxx@db/shoal"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config output lacks %q:\n%s", want, out)
		}
	}
	for _, leak := range []string{"hunter2", "pa55", "print-config", "check-config"} {
		if strings.Contains(out, leak) {
			t.Errorf("--print-config output contains %q:\n%s", leak, out)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"srve"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), `unknown command "srve"`) {
		t.Errorf("run(srve) = %v; want unknown command", err)
	}
}

// The README's configuration table documents every setting.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg app.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(readme, []byte("`"+f.Name+"`")) {
			t.Errorf("README.md does not document the setting `%s` (%s)", f.Name, f.Usage)
		}
	})
}

func TestCheckConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--check-config"}, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "valid") {
		t.Errorf("serve --check-config on defaults = %v, %q; want valid", err, stdout.String())
	}
	if err := run(t.Context(), []string{"serve", "--check-config", "--db.driver=oracle"}, &stdout, &stderr); err == nil {
		t.Error("serve --check-config --db.driver=oracle = nil; want an error")
	}
}
