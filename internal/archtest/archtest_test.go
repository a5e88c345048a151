// Package archtest enforces the direction of imports:
// cmd -> internal/app -> services/* -> internal/* -> gen, and services never
// import one another (they talk through generated gRPC clients); and that an
// outside library with a wrapper is imported by its wrapper alone.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/shoalml/shoal/"

// repoRoot is two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// imports maps each package directory (relative to the root) to the
// module-internal packages its files (tests included) import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for pkg, deps := range allImports(t) {
		for _, p := range deps {
			if strings.HasPrefix(p, module) {
				out[pkg] = append(out[pkg], strings.TrimPrefix(p, module))
			}
		}
	}
	return out
}

// allImports maps each package directory (relative to the root) to every
// import path its files (tests included) name.
func allImports(t *testing.T) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", ".build", "data", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		if strings.HasPrefix(rel, "scripts") {
			return nil // separate modules
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[filepath.ToSlash(rel)] = append(out[filepath.ToSlash(rel)], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func topService(pkg string) string {
	parts := strings.Split(pkg, "/")
	if parts[0] == "services" && len(parts) > 1 {
		return parts[1]
	}
	return ""
}

func TestImportDirection(t *testing.T) {
	all := imports(t)
	if len(all) == 0 {
		t.Fatal("found no packages; is the test running from internal/archtest?")
	}
	var bad []string
	for pkg, deps := range all {
		for _, dep := range deps {
			if why := forbidden(pkg, dep); why != "" {
				bad = append(bad, pkg+" imports "+dep+": "+why)
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// forbidden says why pkg may not import dep, or "" if it may.
func forbidden(pkg, dep string) string {
	switch {
	case strings.HasPrefix(dep, "cmd"):
		return "nothing imports a command"
	case strings.HasPrefix(pkg, "gen") && !strings.HasPrefix(dep, "gen"):
		return "generated code depends only on generated code"
	case topService(pkg) != "" && topService(dep) != "" && topService(pkg) != topService(dep):
		return "a service never imports another service; take its generated gRPC client instead"
	case strings.HasPrefix(pkg, "services") && dep == "internal/app":
		return "services sit below the app wiring"
	case strings.HasPrefix(pkg, "internal") && !strings.HasPrefix(pkg, "internal/app") && strings.HasPrefix(dep, "services"):
		return "shared libraries sit below the services"
	case strings.HasPrefix(pkg, "internal") && !strings.HasPrefix(pkg, "internal/app") && dep == "internal/app":
		return "shared libraries sit below the app wiring"
	}
	return ""
}

// wrappers names the one package that may import each outside library
// wrapped for the rest of the code (STYLE.md: one wrapper per outside
// library, used by everyone).
var wrappers = map[string]string{
	"github.com/yalue/onnxruntime_go":                                             "internal/onnxrt",
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc":             "internal/tracing",
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc": "internal/tracing",
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp":               "internal/tracing",
}

func TestOneWrapperPerLibrary(t *testing.T) {
	for pkg, deps := range allImports(t) {
		for _, dep := range slices.Compact(slices.Sorted(slices.Values(deps))) {
			if w, ok := wrappers[dep]; ok && pkg != w {
				t.Errorf("%s imports %s; use %s, its one wrapper", pkg, dep, w)
			}
		}
	}
}

func TestForbiddenCatchesViolations(t *testing.T) {
	cases := []struct{ pkg, dep string }{
		{"services/trainer", "services/dataset"},
		{"services/inference", "services/registry/internal/store"},
		{"internal/server", "services/dataset"},
		{"internal/storage/db", "internal/app"},
		{"services/dataset", "internal/app"},
		{"gen/shoal/dataset/v1", "internal/server"},
		{"internal/app", "cmd/shoal"},
	}
	for _, c := range cases {
		if forbidden(c.pkg, c.dep) == "" {
			t.Errorf("forbidden(%q, %q) = \"\"; want a reason", c.pkg, c.dep)
		}
	}
	for _, ok := range []struct{ pkg, dep string }{
		{"cmd/shoal", "internal/app"},
		{"internal/app", "services/dataset"},
		{"services/trainer", "gen/shoal/dataset/v1"},
		{"services/trainer", "internal/storage/db"},
		{"services/dataset/store", "services/dataset"},
	} {
		if why := forbidden(ok.pkg, ok.dep); why != "" {
			t.Errorf("forbidden(%q, %q) = %q; want allowed", ok.pkg, ok.dep, why)
		}
	}
}

// allowedProtoImports is the import direction of the contracts.
var allowedProtoImports = map[string][]string{
	// Every service declares its RPCs' scopes with shoal.auth.v1's option.
	"shoal/dataset/v1":   {"shoal/auth/v1"},
	"shoal/inference/v1": {"shoal/auth/v1"},
	"shoal/registry/v1":  {"shoal/auth/v1"},
	"shoal/trainer/v1":   {"shoal/auth/v1", "shoal/registry/v1"},
}

func TestProtoImportDirection(t *testing.T) {
	root := filepath.Join(repoRoot(t), "proto")
	re := regexp.MustCompile(`(?m)^import\s+"(shoal/[a-z]+/v[0-9]+|inference)/[^"]+"`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".proto") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			dep := m[1]
			if dep == rel {
				continue
			}
			ok := false
			for _, a := range allowedProtoImports[rel] {
				ok = ok || a == dep
			}
			if !ok {
				t.Errorf("%s imports %s; allowed: %v (update buf.yaml's note and this table together)", rel, dep, allowedProtoImports[rel])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sdkImports are the module's packages the Go SDK (client/) may import
// besides gen/: what a client needs (the bearer token, TLS files, the
// dataset upload shared with the CLI), none of the server. Its tests start
// a whole server and may import anything.
var sdkImports = []string{"internal/auth", "internal/tlsfiles", "internal/upload"}

func TestSDKImportsNoServer(t *testing.T) {
	root := repoRoot(t)
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(root, "client", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("found no Go files in client/: %v", err)
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			dep, ok := strings.CutPrefix(p, module)
			if ok && !strings.HasPrefix(dep, "gen/") && !slices.Contains(sdkImports, dep) {
				t.Errorf("client/%s imports %s; the SDK may import gen/ and %v", filepath.Base(path), dep, sdkImports)
			}
		}
	}
}
