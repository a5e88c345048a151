package validate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerfilePath is the image every manifest runs, relative to the repository.
const dockerfilePath = "deployments/Dockerfile"

type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
}

type stage struct {
	from, name string // base image (build arguments expanded) and AS name
	ins        []instruction
}

// parseDockerfile reads the instructions of the Dockerfile by stage, with
// line continuations joined and the global ARG defaults expanded in FROM.
// It is no full parser (no heredocs, no escape directive), which is all
// this Dockerfile needs.
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, dockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	globals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		} else if strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			globals[k] = v
		case in.cmd == "FROM":
			f := strings.Fields(os.Expand(in.args, func(k string) string { return globals[k] }))
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0:
			t.Fatalf("%s:%d: %s before the first FROM", dockerfilePath, in.line, in.cmd)
		default:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages; want a build stage and a runtime stage", dockerfilePath, len(stages))
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// copiedTo returns the destinations of the stage's COPY instructions.
func (s stage) copiedTo() []string {
	var out []string
	for _, in := range s.all("COPY") {
		f := strings.Fields(in.args)
		out = append(out, f[len(f)-1])
	}
	return out
}

// imageFiles are the paths the runtime image has from the build.
func imageFiles(t *testing.T) []string {
	stages := parseDockerfile(t)
	return stages[len(stages)-1].copiedTo()
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]

	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	build := slices.IndexFunc(stages, func(s stage) bool {
		return slices.ContainsFunc(s.all("RUN"), func(in instruction) bool {
			return strings.Contains(in.args, "go build") && strings.Contains(in.args, "./cmd/shoal")
		})
	})
	if build < 0 {
		t.Fatalf("%s: no stage runs go build ./cmd/shoal", dockerfilePath)
	}
	if want := "golang:" + string(goVersion[1]); !strings.HasPrefix(stages[build].from, want) {
		t.Errorf("%s: the build stage is FROM %s; want the official Go image of go.mod's release, %s", dockerfilePath, stages[build].from, want)
	}
	checkCgo(t, stages[build])

	// glibc, for ONNX Runtime's shared library; distroless has no shell
	// and, in the nonroot variants, no root user.
	if !strings.HasPrefix(final.from, "gcr.io/distroless/cc-") {
		t.Errorf("%s: the runtime stage is FROM %s; want a glibc distroless image (gcr.io/distroless/cc-*)", dockerfilePath, final.from)
	}
	// A cgo build (ONNX Runtime's binding) links against the build image's
	// glibc, so the two images must be the same Debian release.
	debian := map[string]string{"bookworm": "debian12", "trixie": "debian13"}
	codename := stages[build].from[strings.LastIndex(stages[build].from, "-")+1:]
	if release, ok := debian[codename]; !ok || !strings.Contains(final.from, "-"+release) {
		t.Errorf("%s: builds FROM %s but runs FROM %s; want the same Debian release (golang:*-bookworm with *-debian12, or -trixie with -debian13)", dockerfilePath, stages[build].from, final.from)
	}
	if users := final.all("USER"); len(users) == 0 {
		if !strings.HasSuffix(final.from, ":nonroot") {
			t.Errorf("%s: the runtime stage sets no USER and its base is not a nonroot variant", dockerfilePath)
		}
	} else if u, _, _ := strings.Cut(users[len(users)-1].args, ":"); u == "root" || u == "0" {
		t.Errorf("%s:%d: USER %s; want a non-root user", dockerfilePath, users[len(users)-1].line, u)
	}
	execForm := func(cmd string, want []string) {
		ins := final.all(cmd)
		if len(ins) == 0 {
			t.Errorf("%s: the runtime stage has no %s; want %q", dockerfilePath, cmd, want)
			return
		}
		var got []string
		if err := json.Unmarshal([]byte(ins[len(ins)-1].args), &got); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s:%d: %s %s; want the exec form %q", dockerfilePath, ins[len(ins)-1].line, cmd, ins[len(ins)-1].args, want)
		}
	}
	execForm("ENTRYPOINT", []string{"/shoal"})
	execForm("CMD", []string{"serve"})
	if !slices.Contains(final.copiedTo(), "/shoal") {
		t.Errorf("%s: the runtime stage copies nothing to /shoal", dockerfilePath)
	}

	defaults := process{where: "shoal serve (defaults)", args: []string{"serve"}}.effective(t)
	var exposed []string
	for _, in := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for _, name := range []string{"grpc.listen-address", "http.listen-address"} {
		if p := strconv.Itoa(defaults.port(t, name)); !slices.Contains(exposed, p) && !slices.Contains(exposed, p+"/tcp") {
			t.Errorf("%s: EXPOSE %s; want the default %s port %s", dockerfilePath, strings.Join(exposed, " "), name, p)
		}
	}
	// The embedded default keeps ./data under the working directory.
	volume := final.all("VOLUME")
	workdir := final.all("WORKDIR")
	if len(volume) == 0 || !strings.Contains(volume[len(volume)-1].args, "/data") {
		t.Errorf("%s: the runtime stage declares no /data volume", dockerfilePath)
	}
	if len(workdir) == 0 || workdir[len(workdir)-1].args != "/" {
		t.Errorf("%s: the runtime stage's WORKDIR is not /, so ./data is not the /data volume", dockerfilePath)
	}
}

// checkCgo checks that the build stage's CGO_ENABLED can build the binary as
// the tree stands: with cgo off, a cgo-only package (ONNX Runtime's binding)
// has no files, and the image build would fail where no test here runs it.
func checkCgo(t *testing.T, build stage) {
	t.Helper()
	value := ""
	for _, in := range build.all("ENV") {
		if m := regexp.MustCompile(`CGO_ENABLED=(\S+)`).FindStringSubmatch(in.args); m != nil {
			value = m[1]
		}
	}
	if value == "${CGO_ENABLED}" || value == "$CGO_ENABLED" {
		value = ""
		for _, in := range build.all("ARG") {
			if v, ok := strings.CutPrefix(in.args, "CGO_ENABLED="); ok {
				value = v
			}
		}
	}
	if value != "0" && value != "1" {
		t.Errorf("%s: the build stage sets CGO_ENABLED to %q; want it explicit, 0 or 1", dockerfilePath, value)
		return
	}
	list := exec.CommandContext(t.Context(), "go", "list", "-e", "-deps",
		"-f", `{{if and (not .GoFiles) (not .CgoFiles)}}{{.ImportPath}}{{end}}{{with .Error}} {{.}}{{end}}`, "./cmd/shoal")
	list.Dir = repoRoot
	list.Env = append(os.Environ(), "CGO_ENABLED="+value, "GOOS=linux", "GOARCH=amd64")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/shoal: %v", err)
	}
	if broken := strings.Fields(string(out)); len(broken) > 0 {
		t.Errorf("%s: with CGO_ENABLED=%s, ./cmd/shoal does not build: no Go files for linux/amd64 in %s (cgo-only packages need CGO_ENABLED=1)", dockerfilePath, value, strings.Join(broken, ", "))
	}
}

// TestDockerfileEmbedsConsole checks the image carries the web console: a
// stage builds frontend/ and the Go build stage copies that build to where
// internal/webui embeds it. Without it the binary would still build and
// serve only a page saying the console is missing.
func TestDockerfileEmbedsConsole(t *testing.T) {
	stages := parseDockerfile(t)
	ui := slices.IndexFunc(stages, func(s stage) bool {
		return slices.ContainsFunc(s.all("RUN"), func(in instruction) bool { return strings.Contains(in.args, "npm run build") })
	})
	if ui < 0 {
		t.Fatalf("%s: no stage runs npm run build (the web console)", dockerfilePath)
	}
	build := slices.IndexFunc(stages, func(s stage) bool {
		return slices.ContainsFunc(s.all("RUN"), func(in instruction) bool { return strings.Contains(in.args, "go build") })
	})
	copied := slices.ContainsFunc(stages[build].all("COPY"), func(in instruction) bool {
		return strings.Contains(in.args, "--from="+stages[ui].name) && strings.HasSuffix(in.args, "internal/webui/dist/app")
	})
	if stages[ui].name == "" || !copied {
		t.Errorf("%s: the go build stage copies no console build (COPY --from=%s ... internal/webui/dist/app)", dockerfilePath, stages[ui].name)
	}
}

// TestDockerfileCarriesONNXRuntime checks that the image holds the ONNX
// Runtime library Inference and the Registry load, where the variable that
// names it points, and that it is the release scripts/setup-onnxruntime.sh
// installs for the tests (the one every test ran against).
func TestDockerfileCarriesONNXRuntime(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	var lib string
	for _, in := range final.all("ENV") {
		if m := regexp.MustCompile(`ONNXRUNTIME_SHARED_LIBRARY_PATH=(\S+)`).FindStringSubmatch(in.args); m != nil {
			lib = m[1]
		}
	}
	if lib == "" {
		t.Fatalf("%s: the runtime stage sets no ONNXRUNTIME_SHARED_LIBRARY_PATH; Inference and the Registry would not start", dockerfilePath)
	}
	if !slices.Contains(final.copiedTo(), lib) {
		t.Errorf("%s: ONNXRUNTIME_SHARED_LIBRARY_PATH=%s, but the runtime stage copies nothing there (copied: %q)", dockerfilePath, lib, final.copiedTo())
	}
	docker, err := os.ReadFile(filepath.Join(repoRoot, dockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(repoRoot, "scripts/setup-onnxruntime.sh"))
	if err != nil {
		t.Fatal(err)
	}
	inImage := regexp.MustCompile(`(?m)^ARG ONNXRUNTIME_VERSION=(\S+)`).FindSubmatch(docker)
	inTests := regexp.MustCompile(`(?m)^version=(\S+)`).FindSubmatch(script)
	switch {
	case inImage == nil:
		t.Errorf("%s: no ARG ONNXRUNTIME_VERSION=<release>", dockerfilePath)
	case inTests == nil:
		t.Errorf("scripts/setup-onnxruntime.sh: no version=<release> line")
	case string(inImage[1]) != string(inTests[1]):
		t.Errorf("%s installs ONNX Runtime %s, scripts/setup-onnxruntime.sh %s; want the same release", dockerfilePath, inImage[1], inTests[1])
	}
}
