package split

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one `shoal serve --target=...` child process, on ports chosen
// before it starts (the others' --clients.* flags name them); or, with
// SHOAL_TEST_SPLIT_IMAGE, the same command in a container of that image,
// whose `podman run` is the child process (containers_test.go).
type proc struct {
	t        *testing.T
	name     string // e.g. "inference-2"
	dir      string // working directory (its ./data) and log
	argv     []string
	env      []string
	grpcAddr string
	httpAddr string
	// container is the podman container's name; empty for a process.
	container string
	// healthcheck: the container has the compose file's healthcheck.
	healthcheck bool

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	killed  bool // by kill, on purpose
	lines   []logLine
	changed chan struct{}
}

// logLine is one line of the process's JSON log.
type logLine map[string]any

func (l logLine) msg() string { s, _ := l["msg"].(string); return s }

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// freePort picks a free port of 127.0.0.1 below Linux's ephemeral range,
// so that no outgoing connection takes it while its process is down.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("no free port in 20000-32000")
	return 0
}

func newProc(t *testing.T, name string) *proc {
	t.Helper()
	p := &proc{
		t: t, name: name, dir: filepath.Join(workRoot, name), changed: make(chan struct{}),
		grpcAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cleanup)
	return p
}

// start runs the process; ready waits until it serves.
func (p *proc) start() {
	p.t.Helper()
	logFile, err := os.Create(filepath.Join(p.dir, "shoal.log"))
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout = p.dir, p.env, logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.killed = cmd, exited, false
	p.mu.Unlock()
	go func() {
		p.read(io.TeeReader(stderr, logFile))
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
		p.notify()
	}()
}

// ready waits until the process logged that it serves and its /readyz
// answers 200.
func (p *proc) ready(ctx context.Context) error {
	if _, err := p.waitLog(ctx, func(l logLine) bool { return l.msg() == "serving" }); err != nil {
		return fmt.Errorf("%s: not serving: %w\n%s", p.name, err, p.tail(20))
	}
	return waitReady(ctx, "http://"+p.httpAddr+"/readyz")
}

// waitReady polls a readiness URL until it answers 200, as an
// orchestrator's probe does.
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

func get(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
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

func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		l := logLine{}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			l = logLine{"msg": "(not JSON) " + sc.Text()}
		}
		p.mu.Lock()
		p.lines = append(p.lines, l)
		p.mu.Unlock()
		p.notify()
	}
}

func (p *proc) notify() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// waitLog waits for a log line that matches, failing if the process exits
// first.
func (p *proc) waitLog(ctx context.Context, match func(logLine) bool) (logLine, error) {
	for from := 0; ; {
		p.mu.Lock()
		for ; from < len(p.lines); from++ {
			if match(p.lines[from]) {
				l := p.lines[from]
				p.mu.Unlock()
				return l, nil
			}
		}
		changed, exited, n := p.changed, p.exited, len(p.lines)
		p.mu.Unlock()
		select {
		case <-exited:
			p.mu.Lock()
			more := len(p.lines) > n
			p.mu.Unlock()
			if !more {
				return nil, fmt.Errorf("the process exited (%v)", p.exitErr)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// logged reports whether a line that matches was logged so far.
func (p *proc) logged(match func(logLine) bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if match(l) {
			return true
		}
	}
	return false
}

// tail is the last n log lines, for failure messages.
//
// The access log's lines of calls that succeeded are left out: a failed
// run's output is read from its end, and seven processes' worth of them
// would push the failure itself out of sight.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keep []string
	for i := len(p.lines) - 1; i >= 0 && len(keep) < n; i-- {
		l := p.lines[i]
		if l["msg"] == "rpc" && l["code"] == "OK" {
			continue
		}
		j, _ := json.Marshal(l)
		keep = append(keep, string(j))
	}
	slices.Reverse(keep)
	return strings.Join(keep, "\n") + "\n"
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// killing says how kill ends the process, for the test's log.
func (p *proc) killing() string {
	if p.container != "" {
		return "podman kill"
	}
	return "SIGKILL"
}

// kill sends SIGKILL (`podman kill` to a container) and waits until the
// process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if p.container != "" {
		if out, err := podman("kill", "--signal", "KILL", p.container).CombinedOutput(); err != nil {
			p.t.Errorf("podman kill %s: %v\n%s", p.container, err, out)
		}
	} else {
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	<-exited
}

// stop sends SIGTERM and requires a clean exit within 30 s.
func (p *proc) stop() error {
	p.mu.Lock()
	cmd, exited, killed := p.cmd, p.exited, p.killed
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		if killed {
			return nil // killed on purpose before
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("%s: exited before it was stopped (%v)", p.name, p.exitErr)
	default:
	}
	if p.container != "" {
		// As Compose stops a service: SIGTERM, then SIGKILL after the
		// stop_grace_period (the container's --stop-timeout).
		if out, err := podman("stop", p.container).CombinedOutput(); err != nil {
			return fmt.Errorf("podman stop %s: %v\n%s", p.container, err, out)
		}
	} else {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s: still running 30s after SIGTERM", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitErr != nil {
		return fmt.Errorf("%s: exit after SIGTERM: %v; want status 0", p.name, p.exitErr)
	}
	return nil
}

// cleanup kills a process still running at the end and, when the test
// failed, shows the end of its log.
func (p *proc) cleanup() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
	default:
		if p.container != "" {
			_ = podman("kill", "--signal", "KILL", p.container).Run()
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	if p.container != "" {
		// The container and its anonymous /data volume.
		if out, err := podman("rm", "--force", "--volumes", p.container).CombinedOutput(); err != nil {
			p.t.Errorf("podman rm %s: %v\n%s", p.container, err, out)
		}
	}
	if p.t.Failed() {
		p.t.Logf("%s: last log lines:\n%s", p.name, p.tail(15))
	}
}
