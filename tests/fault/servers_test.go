package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// freePort picks a free TCP port of 127.0.0.1 below Linux's ephemeral
// range (32768+), so that no outgoing connection takes it while the server
// on it is stopped and it is free again for the restart.
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

// postgres is a PostgreSQL server of the test's own: its own data folder
// and port, run as the postgres user (it refuses to run as root).
type postgres struct {
	t    *testing.T
	bin  string // the folder of initdb, pg_ctl and postgres
	dir  string
	port int
}

// startPostgres initialises and starts a private PostgreSQL server; it
// skips the test when PostgreSQL is not installed.
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/pg_ctl)")
	}
	slices.SortFunc(bins, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("no postgres user to run PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p := &postgres{t: t, bin: filepath.Dir(bins[0]), dir: filepath.Join(workRoot, t.Name(), "postgres"), port: freePort(t)}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for d := p.dir; strings.HasPrefix(d, workRoot) && d != workRoot; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(p.dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	p.run("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	t.Cleanup(func() {
		// Immediate: nothing of it is needed afterwards.
		_ = p.cmd("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop").Run()
	})
	p.Start()
	return p
}

func pgMajor(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

func (p *postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *postgres) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	cmd.Dir = p.dir
	return cmd
}

func (p *postgres) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.cmd(name, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// Start starts the server on its port and waits until it accepts
// connections.
func (p *postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir)
	p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
}

// Stop shuts the server down the way an operator or a failover does:
// clients are disconnected at once and new connections are refused.
func (p *postgres) Stop() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.data(), "-m", "fast", "-w", "stop")
}

// DB is the configuration that points Shoal at the server.
func (p *postgres) DB() db.Config {
	return dbConfig(db.Postgres, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port))
}

// waitFor polls cond, the state of a probe, until it holds; probes are
// what an operator's monitoring polls too.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// s3server is an S3 server of the test's own (the one scripts/s3server.sh
// builds), on a port that stays the same across a stop and a start.
type s3server struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	key  string
	cmd  *exec.Cmd
	done chan struct{}
}

// s3Script is the project's script that builds the S3 server; it prints
// the binary's path for `build`.
func s3Script(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "scripts", "s3server.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startS3 builds (or reuses the cached) server binary and starts it.
func startS3(t *testing.T) *s3server {
	t.Helper()
	out, err := exec.Command(s3Script(t), "build").Output()
	if err != nil {
		t.Fatalf("%s build: %v", s3Script(t), err)
	}
	s := &s3server{t: t, bin: strings.TrimSpace(string(out)), dir: filepath.Join(workRoot, t.Name(), "s3"),
		port: freePort(t), key: fmt.Sprintf("k%016x", rand.Uint64())}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(true) })
	s.Start()
	return s
}

// Start runs the server and waits until it stores objects.
func (s *s3server) Start() {
	s.t.Helper()
	logFile, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "-addr", fmt.Sprintf("127.0.0.1:%d", s.port), "-dir", s.dir)
	s.cmd.Env = append(os.Environ(), "SHOAL_S3SERVER_ACCESS_KEY="+s.key, "SHOAL_S3SERVER_SECRET_KEY="+s.key+"secret")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}(s.cmd, s.done)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = waitFor(ctx, "the S3 server to store objects", func() bool {
		select {
		case <-s.done:
			return true
		default:
		}
		st, err := blob.NewS3(ctx, s.Config("shoal-ready"))
		return err == nil && st.Put(ctx, "probe", strings.NewReader("ok"), 2) == nil
	})
	select {
	case <-s.done:
		out, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		s.t.Fatalf("the S3 server exited at start:\n%s", tailLines(string(out), 30))
	default:
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// Stop stops the server (SIGTERM) and waits for it to exit.
func (s *s3server) Stop() { s.stop(false) }

func (s *s3server) stop(kill bool) {
	if s.cmd == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Config is the blob configuration for a bucket of this server.
func (s *s3server) Config(bucket string) blob.S3Config {
	return blob.S3Config{
		Endpoint: fmt.Sprintf("127.0.0.1:%d", s.port), Bucket: bucket, AccessKey: s.key, SecretKey: s.key + "secret",
		Region: "us-east-1", Insecure: true, CreateBucket: true,
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
