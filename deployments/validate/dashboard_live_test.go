package validate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDashboardMetricsAreExported runs `shoal serve` (every service in one
// process, on embedded storage) and uses it as a newcomer does: imports
// the demo dataset, trains a small model, predicts over REST and over
// gRPC. Every metric name the dashboard's queries use must then be on the
// process's /metrics, scraped while the job trains (its per-job series
// exist only then) and again at the end. The all-in-one process runs
// every server and client the split processes do, so it exports the union
// of their names.
func TestDashboardMetricsAreExported(t *testing.T) {
	ort := needRuntime(t)
	names := metricNames(t, readDashboard(t))
	dir := t.TempDir()
	// Under ./data/import, the folder the server imports from by default.
	tree := filepath.Join(dir, "data", "import", "fashion-mnist")
	writeDemoTree(t, tree)
	s := startShoal(t, dir, ort)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(shoalBin, append(args, "--addr", s.grpcAddr)...)
		cmd.Dir = dir // the CLI finds the process's ./data/admin-token
		cmd.Env = shoalEnv(ort)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cli("dataset", "create", "fashion")
	cli("dataset", "import", "fashion", tree)
	cli("dataset", "snapshot", "fashion")

	// The job through REST, followed on its WatchJob stream; /metrics is
	// scraped at its first step's progress, while it runs.
	var job struct {
		Job struct {
			ID string `json:"id"`
		} `json:"job"`
	}
	s.rest(t, http.MethodPost, "/v1/jobs", "application/json",
		strings.NewReader(`{"spec": {"dataset": "fashion", "snapshotVersion": 1, "epochs": 2, "promotion": "PROMOTION_POLICY_ALWAYS"}}`), &job)
	exported := map[string]bool{}
	watch := s.request(t, http.MethodGet, "/v1/jobs/"+job.Job.ID+":watch", "", nil)
	defer watch.Body.Close()
	lines := bufio.NewScanner(watch.Body)
	lines.Buffer(nil, 1<<20)
	scrapedDuringJob, final := false, ""
	for final == "" && lines.Scan() {
		var ev struct {
			Result struct {
				Progress json.RawMessage `json:"progress"`
				State    *struct {
					State string `json:"state"`
				} `json:"state"`
			} `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatalf("WatchJob line %q: %v", lines.Bytes(), err)
		}
		if ev.Result.Progress != nil && !scrapedDuringJob {
			maps.Copy(exported, s.scrape(t))
			scrapedDuringJob = true
		}
		if st := ev.Result.State; st != nil && st.State != "JOB_STATE_QUEUED" && st.State != "JOB_STATE_RUNNING" {
			final = st.State
		}
	}
	if final != "JOB_STATE_SUCCEEDED" || !scrapedDuringJob {
		t.Fatalf("training job %s ended %q (stream error: %v), scraped while it ran: %v; want SUCCEEDED after progress",
			job.Job.ID, final, lines.Err(), scrapedDuringJob)
	}

	// Inference loads the version the job promoted as it sees the alias
	// move; its readiness is a probe.
	s.waitModelReady(t, "fashion")
	image := filepath.Join(tree, "test", "Bag")
	entries, err := os.ReadDir(image)
	if err != nil || len(entries) == 0 {
		t.Fatalf("demo tree %s: %v (%d files)", image, err, len(entries))
	}
	image = filepath.Join(image, entries[0].Name())
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	part, _ := form.CreateFormFile("file", filepath.Base(image))
	b, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(b)
	form.Close()
	var predicted struct {
		Prediction string `json:"prediction"`
	}
	s.rest(t, http.MethodPost, "/predict", form.FormDataContentType(), &body, &predicted)
	if predicted.Prediction == "" {
		t.Fatalf("POST /predict answered no prediction")
	}
	if out := cli("predict", image); !strings.Contains(out, "fashion v1") { // gRPC Predict
		t.Fatalf("shoal predict = %q; want an answer by fashion v1", out)
	}

	maps.Copy(exported, s.scrape(t))
	var missing []string
	for n, panels := range names {
		if !exported[n] {
			missing = append(missing, fmt.Sprintf("%s (panels %q)", n, panels))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics `shoal serve` does not export after a training job, a REST and a gRPC prediction:\n  %s\nexported: %v",
			strings.Join(missing, "\n  "), slices.Sorted(maps.Keys(exported)))
	}
	s.stop(t)
}

// needRuntime returns ONNX Runtime's library (Inference refuses to start
// without it), skipping the test without one unless SHOAL_TEST_ORT_REQUIRED=1.
func needRuntime(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH")
	if lib == "" {
		if os.Getenv("SHOAL_TEST_ORT_REQUIRED") == "1" {
			t.Fatal("ONNXRUNTIME_SHARED_LIBRARY_PATH is not set (scripts/setup-onnxruntime.sh prints it)")
		}
		t.Skip("no ONNX Runtime: set ONNXRUNTIME_SHARED_LIBRARY_PATH (scripts/setup-onnxruntime.sh)")
	}
	return lib
}

// writeDemoTree writes the demo dataset to tree with `shoal demo-data`,
// skipping the test without Debian's Fashion-MNIST unless
// SHOAL_TEST_DEMO_REQUIRED=1.
func writeDemoTree(t *testing.T, tree string) {
	t.Helper()
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"); err != nil {
		if os.Getenv("SHOAL_TEST_DEMO_REQUIRED") == "1" {
			t.Fatalf("no Fashion-MNIST: %v (scripts/setup-demo-data.sh)", err)
		}
		t.Skip("no Fashion-MNIST (scripts/setup-demo-data.sh)")
	}
	if out, err := exec.Command(shoalBin, "demo-data", "--out", tree).CombinedOutput(); err != nil {
		t.Fatalf("shoal demo-data: %v\n%s", err, out)
	}
}

// shoalEnv is the environment of the processes the test starts: this
// one's without Shoal's own settings, which the caller's shell could leak
// in, and with ONNX Runtime's library.
func shoalEnv(ort string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") {
			out = append(out, kv)
		}
	}
	return append(out, "ONNXRUNTIME_SHARED_LIBRARY_PATH="+ort)
}

// liveShoal is a running `shoal serve`.
type liveShoal struct {
	cmd                *exec.Cmd
	exited             chan struct{} // closed once the process has exited
	exitErr            error
	grpcAddr, httpAddr string
	token              string
	log                *logBuffer
}

// logBuffer is the process's log, written by the goroutine reading it and
// read by failure messages.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) add(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(line)
	l.b.WriteByte('\n')
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startShoal starts `shoal serve` in dir on free ports and returns once it
// logs that it serves (after which it is ready: see app.setServing).
func startShoal(t *testing.T, dir, ort string) *liveShoal {
	t.Helper()
	cmd := exec.Command(shoalBin, "serve", "--grpc.listen-address=127.0.0.1:0", "--http.listen-address=127.0.0.1:0",
		"--log.format=json", "--inference.default-model=fashion", "--server.shutdown-timeout=10s")
	cmd.Dir = dir
	cmd.Env = shoalEnv(ort)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &liveShoal{cmd: cmd, exited: make(chan struct{}), log: &logBuffer{}}
	serving := make(chan map[string]any, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			s.log.add(sc.Bytes())
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "serving" {
				serving <- l
			}
		}
	}()
	go func() {
		<-logDone
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case l := <-serving:
		s.grpcAddr, _ = l["grpc"].(string)
		s.httpAddr, _ = l["http"].(string)
	case <-s.exited:
		t.Fatalf("shoal serve exited before serving: %v\n%s", s.exitErr, s.log)
	case <-time.After(2 * time.Minute):
		t.Fatalf("shoal serve not serving within 2 minutes\n%s", s.log)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin-token"))
	if err != nil {
		t.Fatalf("the admin token the first start writes: %v", err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s
}

// stop ends the process as SIGTERM does and fails t unless it stops
// cleanly.
func (s *liveShoal) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.exitErr != nil {
			t.Errorf("shoal serve after SIGTERM: %v\n%s", s.exitErr, s.log)
		}
	case <-time.After(time.Minute):
		t.Errorf("shoal serve still running a minute after SIGTERM")
	}
}

// request sends one request with the admin token and fails t unless it
// is answered 200.
func (s *liveShoal) request(t *testing.T, method, path, contentType string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+s.httpAddr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("%s %s = %d %s; want 200", method, path, resp.StatusCode, b)
	}
	return resp
}

// rest sends one request and decodes its JSON answer into out.
func (s *liveShoal) rest(t *testing.T, method, path, contentType string, body io.Reader, out any) {
	t.Helper()
	resp := s.request(t, method, path, contentType, body)
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: decoding the answer: %v", method, path, err)
	}
}

// scrape returns the names /metrics exports.
func (s *liveShoal) scrape(t *testing.T) map[string]bool {
	t.Helper()
	resp := s.request(t, http.MethodGet, "/metrics", "", nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return exportedNames(b)
}

// waitModelReady polls the Open Inference Protocol's model readiness, a
// probe, until model is loaded.
func (s *liveShoal) waitModelReady(t *testing.T, model string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.httpAddr+"/v2/models/"+model+"/ready", nil)
		req.Header.Set("Authorization", "Bearer "+s.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("model %s not ready within 2 minutes of its promotion\n%s", model, s.log)
		case <-tick.C:
		}
	}
}
