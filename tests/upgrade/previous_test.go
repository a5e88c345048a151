package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/demodata"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// envPrevious enables TestPreviousReleaseSideBySide, which builds the
// snapshot's release from git (make test-upgrade).
const envPrevious = "SHOAL_TEST_UPGRADE_PREVIOUS"

// adminToken is what both releases bootstrap and the CLI sends.
const adminToken = "upgrade-test-admin-token-0123456789abcdef"

// TestPreviousReleaseSideBySide runs the release the snapshot was taken
// from and this tree as two `shoal serve` processes on one database and
// one bucket, as a rolling update does: the previous release starts first,
// this tree's migrations run when it starts second. Each then reads what
// the other wrote, through its own API: a dataset uploaded, snapshotted,
// trained on and promoted through one is listed, counted, replayed and
// predicted with by the other.
func TestPreviousReleaseSideBySide(t *testing.T) {
	if os.Getenv(envPrevious) != "1" {
		t.Skip("builds the previous release from git; runs with " + envPrevious + "=1 (make test-upgrade)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	prev, cur := releaseBinaries(t)
	photos := photoTree(ctx, t)
	for _, d := range []db.Driver{db.MySQL, db.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			cfg := dbtest.Config(t, d)
			env := []string{"SHOAL_DB_DRIVER=" + string(cfg.Driver), "SHOAL_DB_DSN=" + cfg.DSN}
			env = append(env, s3Env(t)...)

			old := startServe(ctx, t, "previous", prev, env)
			next := startServe(ctx, t, "current", cur, env)
			for i, step := range []struct{ writer, reader *serve }{{next, old}, {old, next}} {
				name := fmt.Sprintf("by-%s", step.writer.name)
				version := i + 1
				step.writer.cli(ctx, t, "dataset", "create", name)
				step.writer.cli(ctx, t, "dataset", "upload", name, photos)
				step.writer.cli(ctx, t, "dataset", "snapshot", name)
				step.writer.cli(ctx, t, "train", "--dataset", name, "--snapshot", "1", "--epochs", "1", "--batch-size", "16",
					"--model", "fashion", "--follow")
				step.writer.cli(ctx, t, "models", "promote", "fashion", fmt.Sprint(version))

				r := step.reader
				var stats struct {
					ImageCount json.Number `json:"imageCount"`
				}
				r.json(ctx, t, &stats, "dataset", "stats", name)
				if want := fmt.Sprint(countImages(t, photos)); stats.ImageCount.String() != want {
					t.Errorf("%s: dataset stats %s = %s images; want %s, written by %s", r.name, name, stats.ImageCount, want, step.writer.name)
				}
				var show struct {
					Version struct {
						Version json.Number `json:"version"`
						Aliases []string    `json:"aliases"`
					} `json:"version"`
				}
				r.json(ctx, t, &show, "models", "show", "fashion", "production")
				if show.Version.Version.String() != fmt.Sprint(version) {
					t.Errorf("%s: models show fashion production = version %s; want %d, promoted by %s", r.name, show.Version.Version, version, step.writer.name)
				}
				var jobs struct {
					Jobs []struct {
						ID    string `json:"id"`
						State string `json:"state"`
						Spec  struct {
							Dataset string `json:"dataset"`
						} `json:"spec"`
					} `json:"jobs"`
				}
				r.json(ctx, t, &jobs, "jobs", "ls")
				job := ""
				for _, j := range jobs.Jobs {
					if j.Spec.Dataset == name && j.State == "JOB_STATE_SUCCEEDED" {
						job = j.ID
					}
				}
				if job == "" {
					t.Errorf("%s: jobs ls = %+v; want the succeeded job on %s that %s ran", r.name, jobs.Jobs, name, step.writer.name)
				} else if out := r.cli(ctx, t, "jobs", "watch", job); !strings.Contains(out, "registered fashion version") {
					t.Errorf("%s: jobs watch %s replayed:\n%s\nwant the history %s wrote", r.name, job, out, step.writer.name)
				}
				sample := firstImage(t, filepath.Join(photos, "test"))
				if out := r.cli(ctx, t, "predict", "--model", "fashion", "--version", fmt.Sprint(version), sample); !strings.Contains(out, fmt.Sprintf("fashion v%d", version)) {
					t.Errorf("%s: predict with version %d (%s's) printed:\n%s", r.name, version, step.writer.name, out)
				}
			}
			old.stop(t)
			next.stop(t)
		})
	}
}

// releaseBinaries builds shoal at the commit the snapshot names and at
// this tree.
func releaseBinaries(t *testing.T) (prev, cur string) {
	t.Helper()
	var snap snapshot
	b, err := os.ReadFile(snapshotPath(db.Postgres))
	if err == nil {
		err = json.Unmarshal(b, &snap)
	}
	if err != nil || snap.Commit == "" {
		t.Fatalf("the snapshot names no commit to build (%v): make schema-snapshot records it", err)
	}
	dir := t.TempDir()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, snap.Commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", snap.Commit, err, out)
	}
	prev, cur = filepath.Join(dir, "shoal-previous"), filepath.Join(dir, "shoal-current")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range []struct{ dir, out string }{{src, prev}, {root, cur}} {
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", b.out, "./cmd/shoal")
			cmd.Dir = b.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build in %s: %v\n%s", b.dir, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the previous release (%s) and this tree in %s", snap.Commit, time.Since(start).Round(time.Second))
	return prev, cur
}

// s3Env points a process at the test suite's S3 server, in a bucket of
// the test's own.
func s3Env(t *testing.T) []string {
	t.Helper()
	endpoint := os.Getenv("SHOAL_TEST_S3_ENDPOINT")
	if endpoint == "" {
		t.Fatal(`no S3 server: eval "$(scripts/s3server.sh start DIR)" sets SHOAL_TEST_S3_*`)
	}
	return []string{"SHOAL_BLOB_BACKEND=s3", "SHOAL_BLOB_S3_ENDPOINT=" + endpoint,
		"SHOAL_BLOB_S3_ACCESS_KEY=" + os.Getenv("SHOAL_TEST_S3_ACCESS_KEY"), "SHOAL_BLOB_S3_SECRET_KEY=" + os.Getenv("SHOAL_TEST_S3_SECRET_KEY"),
		fmt.Sprintf("SHOAL_BLOB_S3_BUCKET=shoal-upgrade-%d", time.Now().UnixNano()), "SHOAL_BLOB_S3_INSECURE=true",
		"SHOAL_BLOB_S3_CREATE_BUCKET=true", "SHOAL_BLOB_S3_REGION=us-east-1"}
}

// serve is one `shoal serve` process of one release.
type serve struct {
	name, bin, dir, grpcAddr, httpAddr string
	cmd                                *exec.Cmd
	log                                *bytes.Buffer
	done                               chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe starts every service in one process and waits for /readyz.
func startServe(ctx context.Context, t *testing.T, name, bin string, env []string) *serve {
	t.Helper()
	s := &serve{name: name, bin: bin, dir: t.TempDir(), grpcAddr: freeAddr(t), httpAddr: freeAddr(t), log: &bytes.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--grpc.listen-address="+s.grpcAddr, "--http.listen-address="+s.httpAddr)
	s.cmd.Dir = s.dir
	s.cmd.Env = append(append(hostEnv(), env...), "SHOAL_AUTH_BOOTSTRAP_TOKEN="+adminToken)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s's log:\n%s", s.name, tail(s.log.String(), 30))
		}
	})
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.httpAddr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("%s (%s) exited before it was ready: %v\n%s", name, bin, err, tail(s.log.String(), 30))
		case <-ctx.Done():
			t.Fatalf("%s never answered /readyz 200\n%s", name, tail(s.log.String(), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cli runs this release's CLI against its own server and fails the test
// unless it exits 0.
func (s *serve) cli(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir = s.dir
	cmd.Env = append(hostEnv(), "SHOAL_ADDR="+s.grpcAddr, "SHOAL_TOKEN="+adminToken, "NO_COLOR=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: shoal %s: %v\n%s%s", s.name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func (s *serve) json(ctx context.Context, t *testing.T, v any, args ...string) {
	t.Helper()
	out := s.cli(ctx, t, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: shoal %s -o json: %v\n%s", s.name, strings.Join(args, " "), err, out)
	}
}

// stop ends the process with SIGTERM and requires a clean exit.
func (s *serve) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("%s: exit after SIGTERM: %v; want status 0", s.name, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s: still running 30s after SIGTERM", s.name)
	}
}

// hostEnv is the test's environment less its SHOAL_* variables.
func hostEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") {
			env = append(env, kv)
		}
	}
	return env
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// photoTree is a small tree laid out split/Label/file: 24 train and 6
// test images of 4 labels of the demo data.
func photoTree(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	demo := filepath.Join(dir, "demo")
	if _, err := demodata.Generate(ctx, demodata.Options{Out: demo}); err != nil {
		t.Fatalf("demo tree: %v (scripts/setup-demo-data.sh installs its source)", err)
	}
	photos := filepath.Join(dir, "photos")
	labels, err := os.ReadDir(filepath.Join(demo, "train"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range labels[:min(4, len(labels))] {
		for split, n := range map[string]int{"train": 24, "test": 6} {
			files, _ := filepath.Glob(filepath.Join(demo, split, l.Name(), "*"))
			out := filepath.Join(photos, split, l.Name())
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files[:min(n, len(files))] {
				if err := os.Link(f, filepath.Join(out, filepath.Base(f))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return photos
}

func countImages(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, split := range []string{"train", "test"} {
		files, err := filepath.Glob(filepath.Join(dir, split, "*", "*"))
		if err != nil {
			t.Fatal(err)
		}
		n += len(files)
	}
	return n
}

func firstImage(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(files) == 0 {
		t.Fatalf("no image under %s", dir)
	}
	return files[0]
}
