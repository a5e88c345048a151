package validate

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// shoalBin is the shoal binary every test runs: $SHOAL_BIN, or one TestMain
// builds from the repository.
var shoalBin string

// repoRoot is the main module's directory; the tests run in
// deployments/validate.
var repoRoot = filepath.Join("..", "..")

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	shoalBin = os.Getenv("SHOAL_BIN")
	if shoalBin == "" {
		dir, err := os.MkdirTemp("", "shoal-validate-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		shoalBin = filepath.Join(dir, "shoal")
		build := exec.Command("go", "build", "-o", shoalBin, "./cmd/shoal")
		build.Dir = repoRoot
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building shoal (set SHOAL_BIN to use a built one):", err)
			return 1
		}
	}
	return m.Run()
}

// process is one Shoal process as a manifest runs it: the arguments after
// the image's entrypoint, the environment (secrets as their example or
// default values) and the files mounted into it (the config file), by their
// path inside the container.
type process struct {
	where string // for messages: "compose service trainer", "Deployment trainer"
	args  []string
	env   map[string]string
	files map[string][]byte
}

// healthService is the grpc.health.v1 service name that turns SERVING when
// module m has started: its gRPC service, or "" (the whole process) for the
// gateway, which serves none of its own.
func healthService(m string) string {
	if m == "gateway" {
		return ""
	}
	return "shoal." + m + ".v1." + strings.ToUpper(m[:1]) + m[1:] + "Service"
}

// flagArg returns the value of the flag name in args, in any of the forms
// Go's flag package takes (-name=v, --name=v, -name v, --name v).
func flagArg(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		trimmed := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if trimmed == a {
			continue
		}
		if n, v, ok := strings.Cut(trimmed, "="); ok && n == name {
			return v, true
		}
		if trimmed == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// withoutFlag returns args without the flag name (its "=" form, which the
// manifests use for every setting).
func withoutFlag(args []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(args), func(a string) bool {
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		return strings.HasPrefix(a, "-") && n == name
	})
}

// target is the process's --target, which the manifests give as an argument.
func (p process) target() (string, error) {
	if len(p.args) == 0 || p.args[0] != "serve" {
		return "", fmt.Errorf("%s: arguments %q; want them to start with serve", p.where, p.args)
	}
	t, ok := flagArg(p.args, "target")
	if !ok {
		return "", fmt.Errorf("%s: no --target argument; a split process names the one module it runs", p.where)
	}
	return t, nil
}

// shoal runs the binary as the process would start, plus extra arguments,
// with exactly the process's environment and its mounted files copied to a
// temporary directory (the config file's path, and variables that name a
// mounted file, rewritten to the copy).
func (p process) shoal(t *testing.T, extra ...string) (stdout, stderr string, err error) {
	t.Helper()
	dir := t.TempDir()
	local := map[string]string{}
	for i, path := range slices.Sorted(maps.Keys(p.files)) {
		name := filepath.Join(dir, strconv.Itoa(i)+"-"+filepath.Base(path))
		if err := os.WriteFile(name, p.files[path], 0o600); err != nil {
			t.Fatal(err)
		}
		local[path] = name
	}
	mounted := func(path string) (string, error) {
		if l, ok := local[path]; ok {
			return l, nil
		}
		return "", fmt.Errorf("%s: config file %s is not mounted (mounted: %v)", p.where, path, slices.Sorted(maps.Keys(p.files)))
	}
	args := slices.Clone(p.args)
	if file, ok := flagArg(args, "config.file"); ok {
		l, err := mounted(file)
		if err != nil {
			return "", "", err
		}
		args = append(withoutFlag(args, "config.file"), "--config.file="+l)
	}
	env := []string{}
	for k, v := range p.env {
		if k == "SHOAL_CONFIG_FILE" {
			l, err := mounted(v)
			if err != nil {
				return "", "", err
			}
			v = l
		} else if l, ok := local[v]; ok {
			v = l // a mounted file: its copy
		}
		env = append(env, k+"="+v)
	}
	cmd := exec.CommandContext(t.Context(), shoalBin, append(args, extra...)...)
	cmd.Env = env
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	// Name files as the manifest mounts them, not by their temporary copies.
	stderr = errOut.String()
	for path, l := range local {
		stderr = strings.ReplaceAll(stderr, l, path)
	}
	return out.String(), stderr, err
}

// checkConfig reports whether shoal --check-config accepts the process as
// it stands, with extra arguments; the error carries shoal's explanation.
func (p process) checkConfig(t *testing.T, extra ...string) error {
	t.Helper()
	_, stderr, err := p.shoal(t, append(extra, "--check-config")...)
	if err != nil {
		return fmt.Errorf("%s (%w)", strings.TrimSpace(stderr), err)
	}
	return nil
}

// settings is an effective configuration: flag name -> value.
type settings map[string]string

// effective returns the configuration the process would run with, as shoal
// --print-config computes it (credentials masked).
func (p process) effective(t *testing.T) settings {
	t.Helper()
	stdout, stderr, err := p.shoal(t, "--print-config")
	if err != nil {
		t.Fatalf("%s: shoal serve --print-config: %v\n%s", p.where, err, stderr)
	}
	var tree map[string]any
	if err := yaml.Unmarshal([]byte(stdout), &tree); err != nil {
		t.Fatalf("%s: parsing shoal --print-config output: %v\n%s", p.where, err, stdout)
	}
	out := settings{}
	flatten("", tree, out)
	return out
}

func flatten(prefix string, v any, out settings) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if prefix != "" {
				k = prefix + "." + k
			}
			flatten(k, child, out)
		}
	case float64:
		out[prefix] = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		out[prefix] = fmt.Sprint(v)
	}
}

func (s settings) duration(t *testing.T, name string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s[name])
	if err != nil {
		t.Fatalf("effective %s = %q: %v", name, s[name], err)
	}
	return d
}

// port is the port of a listen address setting such as grpc.listen-address.
func (s settings) port(t *testing.T, name string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(s[name])
	if err == nil {
		var n int
		if n, err = strconv.Atoi(port); err == nil {
			return n
		}
	}
	t.Fatalf("effective %s = %q: %v", name, s[name], err)
	return 0
}

// drainTime is how long the process may take to stop after SIGTERM.
func (s settings) drainTime(t *testing.T) time.Duration {
	return s.duration(t, "server.shutdown-delay") + s.duration(t, "server.shutdown-timeout")
}

// modules are the modules --target takes, as the binary lists them in its
// help: the manifests must run each in a process of its own.
func modules(t *testing.T) []string {
	t.Helper()
	stdout, stderr, _ := process{where: "shoal serve --help", args: []string{"serve"}}.shoal(t, "--help")
	help := stdout + stderr // asked-for help goes to stdout
	m := regexp.MustCompile(`what this process runs: all, or a comma-separated list of ([a-z]+(?:, [a-z]+)*)`).FindStringSubmatch(help)
	if m == nil {
		t.Fatalf("shoal serve --help does not list the --target modules as expected; update modules():\n%s", help)
	}
	return strings.Split(m[1], ", ")
}

// ran is what checkProcesses learnt about a process.
type ran struct {
	process
	module    string
	effective settings
	calls     []string // the services it calls: its clients.*-address arguments
	needsDB   bool
	needsBlob bool
}

// checkProcesses checks what holds for the processes of any manifest: one
// process per module; shoal accepts each one's configuration; each calls its
// peers at an address that resolve maps to the process running that peer,
// and names no address it does not need. resolve returns the module served
// at a host:port.
func checkProcesses(t *testing.T, procs []process, resolve func(addr string) (string, error)) map[string]ran {
	t.Helper()
	known := modules(t)
	out := map[string]ran{}
	seen := map[string]string{} // module -> where
	for _, p := range procs {
		m, err := p.target()
		if err != nil {
			t.Error(err)
			continue
		}
		if !slices.Contains(known, m) {
			t.Errorf("%s: --target=%s; want one of %s (one module per process)", p.where, m, strings.Join(known, ", "))
			continue
		}
		if other, dup := seen[m]; dup {
			t.Errorf("%s and %s both run --target=%s; want one each", other, p.where, m)
			continue
		}
		seen[m] = p.where
		if err := p.checkConfig(t); err != nil {
			t.Errorf("%s: shoal serve --check-config refuses its configuration:\n%v", p.where, err)
			continue
		}
		r := ran{process: p, module: m, effective: p.effective(t)}
		// A split process refuses storage private to one process exactly
		// when its modules use that storage: ask the binary which it uses.
		r.needsDB = p.checkConfig(t, "--db.driver=sqlite") != nil
		r.needsBlob = p.checkConfig(t, "--blob.backend=local") != nil
		for _, svc := range []string{"auth", "dataset", "trainer", "registry", "inference"} {
			name := "clients." + svc + "-address"
			addr := r.effective[name]
			if addr == "" {
				continue
			}
			if arg, _ := flagArg(p.args, name); arg != addr {
				t.Errorf("%s: %s=%q comes from the shared file or the environment; want it as an argument of the processes that call %s", p.where, name, addr, svc)
			}
			if p.checkConfig(t, "--"+name+"=") == nil {
				t.Errorf("%s: --%s=%s but --target=%s does not call %s; drop it", p.where, name, addr, m, svc)
				continue
			}
			r.calls = append(r.calls, svc)
			got, err := resolve(addr)
			switch {
			case err != nil:
				t.Errorf("%s: --%s=%s: %v", p.where, name, addr, err)
			case got != svc:
				t.Errorf("%s: --%s=%s reaches the process running %q; want %s", p.where, name, addr, got, svc)
			}
		}
		t.Logf("%s: --target=%s calls %v, database %v, blob store %v, environment %v",
			p.where, m, r.calls, r.needsDB, r.needsBlob, slices.Sorted(maps.Keys(p.env)))
		out[m] = r
	}
	for _, m := range known {
		if _, ok := seen[m]; !ok {
			t.Errorf("no process runs --target=%s; want one per module (%s)", m, strings.Join(known, ", "))
		}
	}
	return out
}
