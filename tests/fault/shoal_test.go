package fault

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	oippb "github.com/shoalml/shoal/gen/inference"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// shoal is one `shoal serve` child process. Its state lives under dir
// (the working directory, so ./data is dir/data); Start can run it again
// on the same state after it was killed or stopped.
type shoal struct {
	t    *testing.T
	dir  string
	args []string
	name string // for log lines and files

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	exitErr error
	lines   []logLine
	changed chan struct{} // closed and replaced whenever a line arrives
	// killOn, when set, is checked against every log line as it arrives:
	// the first match kills the process at once (see KillOnLog).
	killOn func(logLine) bool
	runs   int

	grpcAddr, httpAddr string
	conn               *grpc.ClientConn
	clients
}

// clients are the generated gRPC clients of one running process.
type clients struct {
	Dataset   datasetpb.DatasetServiceClient
	Trainer   trainerpb.TrainerServiceClient
	Registry  registrypb.RegistryServiceClient
	Inference inferencepb.InferenceServiceClient
	OIP       oippb.GRPCInferenceServiceClient
}

// logLine is one line of the server's JSON log.
type logLine map[string]any

func (l logLine) msg() string { s, _ := l["msg"].(string); return s }

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// startupTimeout bounds how long a start may take to serve.
const startupTimeout = 60 * time.Second

// newShoal prepares a process whose state lives in a new folder under the
// test's work root; extra are flags added to the defaults below (later
// flags win).
func newShoal(t *testing.T, name string, extra ...string) *shoal {
	t.Helper()
	dir := filepath.Join(workRoot, t.Name(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"serve",
		"--grpc.listen-address=127.0.0.1:0",
		"--http.listen-address=127.0.0.1:0",
		"--log.format=json",
		"--server.shutdown-timeout=10s",
		"--trainer.backend=onnx",
		// A killed process's job is resumed once its lease expires; the
		// shortest lease the trainer accepts keeps the tests short.
		"--trainer.job-lease=6s",
		"--trainer.poll-interval=200ms",
		"--registry.upload-dir=" + filepath.Join(dir, "uploads"),
		"--inference.default-model=fashion",
	}
	if err := os.MkdirAll(filepath.Join(dir, "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &shoal{t: t, dir: dir, name: name, args: append(args, extra...), changed: make(chan struct{})}
	t.Cleanup(s.cleanup)
	return s
}

// env is the child's environment: this one's, without settings of Shoal
// that could leak in from the caller's shell.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SHOAL_") && !strings.HasPrefix(kv, "SHOAL_TEST_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Start runs the process and waits until it serves and /readyz answers
// 200; it returns how long that took.
func (s *shoal) Start() time.Duration {
	s.t.Helper()
	d, err := s.start()
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", s.name, err, s.tail(40))
	}
	return d
}

func (s *shoal) start() (time.Duration, error) {
	began := time.Now()
	s.mu.Lock()
	s.runs++
	run := s.runs
	s.mu.Unlock()
	logFile, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("shoal-%d.log", run)))
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(shoalBin, s.args...)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return 0, err
	}
	from := s.mark()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return 0, err
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.exitErr = cmd, exited, nil
	s.mu.Unlock()
	go func() {
		s.read(io.TeeReader(stderr, logFile))
		err := cmd.Wait()
		logFile.Close()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(exited)
		s.notify()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
	defer cancel()
	serving, err := s.waitLog(ctx, from, func(l logLine) bool { return l.msg() == "serving" })
	if err != nil {
		return 0, fmt.Errorf("not serving: %w", err)
	}
	s.grpcAddr, s.httpAddr = serving.str("grpc"), serving.str("http")
	if err := s.dial(); err != nil {
		return 0, err
	}
	if err := waitReady(ctx, s.httpURL("/readyz")); err != nil {
		return 0, err
	}
	return time.Since(began), nil
}

// dial connects the clients to the running process; a token the process
// wrote for its admin (when auth is on) is sent with every call.
func (s *shoal) dial() error {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	}
	if tok, err := os.ReadFile(filepath.Join(s.dir, "data", "admin-token")); err == nil {
		auth := "Bearer " + strings.TrimSpace(string(tok))
		opts = append(opts,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", auth), method, req, reply, cc, o...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, "authorization", auth), desc, cc, method, o...)
			}))
	}
	conn, err := grpc.NewClient(s.grpcAddr, opts...)
	if err != nil {
		return err
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn = conn
	s.clients = clients{
		Dataset:   datasetpb.NewDatasetServiceClient(conn),
		Trainer:   trainerpb.NewTrainerServiceClient(conn),
		Registry:  registrypb.NewRegistryServiceClient(conn),
		Inference: inferencepb.NewInferenceServiceClient(conn),
		OIP:       oippb.NewGRPCInferenceServiceClient(conn),
	}
	return nil
}

func (s *shoal) httpURL(path string) string { return "http://" + s.httpAddr + path }

// waitReady polls /readyz until it answers 200: readiness is a probe, and
// polling it is how every orchestrator consumes it.
func waitReady(ctx context.Context, url string) error {
	for {
		code, body, err := get(ctx, url)
		if err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered 200 (last: %d %q, %v)", url, code, body, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches url and returns its status and body.
func get(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// read collects the process's log lines until its stderr closes.
func (s *shoal) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		l := logLine{}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			l = logLine{"msg": "(not JSON) " + sc.Text()}
		}
		s.mu.Lock()
		s.lines = append(s.lines, l)
		if s.killOn != nil && s.killOn(l) {
			s.killOn = nil
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
		}
		s.mu.Unlock()
		s.notify()
	}
}

// KillOnLog makes the process die by SIGKILL as soon as it logs a line
// that matches: the kill lands within the time the log line takes to
// reach this process, before the server has gone much further.
func (s *shoal) KillOnLog(match func(logLine) bool) {
	s.mu.Lock()
	s.killOn = match
	s.mu.Unlock()
}

// WaitExit waits for the process to exit (after KillOnLog).
func (s *shoal) WaitExit(ctx context.Context) error {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	select {
	case <-exited:
		s.closeConn()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: still running: %w", s.name, ctx.Err())
	}
}

func (s *shoal) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// mark is the index of the next log line, to wait for lines after now.
func (s *shoal) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// waitLog waits for a line at or after index from that matches, and fails
// if the process exits first.
func (s *shoal) waitLog(ctx context.Context, from int, match func(logLine) bool) (logLine, error) {
	for {
		s.mu.Lock()
		for ; from < len(s.lines); from++ {
			if match(s.lines[from]) {
				l := s.lines[from]
				s.mu.Unlock()
				return l, nil
			}
		}
		changed, exited := s.changed, s.exited
		s.mu.Unlock()
		select {
		case <-exited:
			// Lines may still arrive after the exit is noticed.
			s.mu.Lock()
			n := len(s.lines)
			s.mu.Unlock()
			if from < n {
				continue
			}
			return nil, fmt.Errorf("the process exited (%v)", s.exitErr)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// tail is the last n log lines, for failure messages.
func (s *shoal) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.lines[max(0, len(s.lines)-n):] {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *shoal) Kill() {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("%s: Kill without a running process", s.name)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	s.closeConn()
}

// Signal sends sig to the running process without waiting; safe to call
// from any goroutine.
func (s *shoal) Signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Stop sends SIGTERM and requires a clean exit.
func (s *shoal) Stop() {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		s.t.Fatalf("%s: still running 30s after SIGTERM\n%s", s.name, s.tail(30))
	}
	s.closeConn()
	s.mu.Lock()
	err := s.exitErr
	s.cmd = nil
	s.mu.Unlock()
	if err != nil {
		s.t.Errorf("%s: exit after SIGTERM: %v; want status 0\n%s", s.name, err, s.tail(30))
	}
}

func (s *shoal) closeConn() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// Running reports whether the process has not exited.
func (s *shoal) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// cleanup kills a process still running at the end of the test and, on
// failure, shows the end of its log.
func (s *shoal) cleanup() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd != nil {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	}
	s.closeConn()
	if s.t.Failed() {
		s.t.Logf("%s: last log lines:\n%s", s.name, s.tail(25))
	}
}

// ctx is a context for one step of a test, bounded so that a hang fails
// the test instead of the whole run.
func stepCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
