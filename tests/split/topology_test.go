package split

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// trainerLease is the trainers' --trainer.job-lease: the shortest the
// trainer accepts, so that a killed trainer's job is taken over soon.
const trainerLease = 6 * time.Second

// topology is the compose file's Shoal services running as processes.
type topology struct {
	t       *testing.T
	compose *composeFile
	order   []string           // compose services in start order
	procs   map[string][]*proc // replicas by compose service
	pg      *postgres          // when the services use PostgreSQL
	// dsn makes a compose service's SHOAL_DB_DSN the test's database.
	dsn    func(string) (string, error)
	s3     s3Server
	bucket string // the deployment's bucket, fresh for this run
	admin  string // the admin token the auth service bootstraps
	gw     *proc
	conn   *grpc.ClientConn // to the gateway's gRPC port, with the admin token
}

// s3Server is the test suite's S3 server (scripts/s3server.sh).
type s3Server struct{ endpoint, accessKey, secretKey string }

func testS3(t *testing.T) s3Server {
	t.Helper()
	s := s3Server{os.Getenv("SHOAL_TEST_S3_ENDPOINT"), os.Getenv("SHOAL_TEST_S3_ACCESS_KEY"), os.Getenv("SHOAL_TEST_S3_SECRET_KEY")}
	if s.endpoint == "" {
		t.Fatal(`no S3 server: eval "$(scripts/s3server.sh start DIR)" sets SHOAL_TEST_S3_*`)
	}
	return s
}

// replicaOverrides are the replicas the test runs where the compose file
// runs another number: a second trainer, to take over a killed one's job.
var replicaOverrides = map[string]int{"trainer": 2}

// extraFlags are the test's own settings, on top of the compose file's.
var extraFlags = map[string][]string{
	"trainer": {"--trainer.job-lease=" + trainerLease.String(), "--trainer.poll-interval=200ms"},
}

// startTopology reads the compose file, starts PostgreSQL, and starts
// every Shoal service of the file in its dependency order, each replica
// as a process of its own, and waits until each is ready.
func startTopology(ctx context.Context, t *testing.T) *topology {
	t.Helper()
	return startTopologyOf(ctx, t, "compose.yaml")
}

// startTopologyOf is startTopology for the compose files of
// deployments/compose given to docker compose -f, in order: later files
// override earlier ones. The database is the one the auth service's
// settings name: a PostgreSQL server of the test's own, or, for MySQL, a
// fresh database on the test suite's MariaDB server
// (SHOAL_TEST_MYSQL_DSN).
func startTopologyOf(ctx context.Context, t *testing.T, files ...string) *topology {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(repoRoot, "deployments", "compose", f))
	}
	c, err := readCompose(paths...)
	if err != nil {
		t.Fatal(err)
	}
	order, err := c.shoalServices()
	if err != nil {
		t.Fatal(err)
	}
	top := &topology{t: t, compose: c, order: order, procs: map[string][]*proc{}, s3: testS3(t),
		bucket: fmt.Sprintf("shoal-split-%d", time.Now().UnixNano())}
	top.admin = c.Services["auth"].Environment["SHOAL_AUTH_BOOTSTRAP_TOKEN"]
	if top.admin == "" {
		t.Fatal("compose: the auth service sets no SHOAL_AUTH_BOOTSTRAP_TOKEN; the test logs in with it")
	}
	authDSN := c.Services["auth"].Environment["SHOAL_DB_DSN"]
	switch driver := c.Services["auth"].Environment["SHOAL_DB_DRIVER"]; driver {
	case "", "postgres": // shoal.yaml's driver
		dsn, err := url.Parse(authDSN)
		if err != nil || dsn.User == nil {
			t.Fatalf("compose: the auth service's SHOAL_DB_DSN %q: %v", authDSN, err)
		}
		top.pg = startPostgres(t, dsn.User.Username(), strings.TrimPrefix(dsn.Path, "/"))
		top.dsn = func(v string) (string, error) {
			return strings.Replace(v, "@"+dsn.Host+"/", "@"+top.pg.addr()+"/", 1), nil
		}
	case "mysql":
		test, err := mysql.ParseDSN(dbtest.Config(t, db.MySQL).DSN)
		if err != nil {
			t.Fatal(err)
		}
		// The compose file's DSN, pointed at the test's database and
		// logged in as the test server's user (the compose file's user
		// exists only in its own MySQL).
		top.dsn = func(v string) (string, error) {
			c, err := mysql.ParseDSN(v)
			if err != nil {
				return "", fmt.Errorf("compose: SHOAL_DB_DSN %q: %w", v, err)
			}
			c.Addr, c.User, c.Passwd, c.DBName = test.Addr, test.User, test.Passwd, test.DBName
			return c.FormatDSN(), nil
		}
	default:
		t.Fatalf("compose: the auth service's SHOAL_DB_DRIVER %q: the test runs postgres and mysql", driver)
	}
	image := os.Getenv(envImage)
	if image != "" {
		t.Cleanup(top.removeVolumes) // after the containers' own cleanups
	}

	for _, name := range order {
		n := c.Services[name].replicas()
		if o, ok := replicaOverrides[name]; ok {
			n = o
		}
		for i := 1; i <= n; i++ {
			top.procs[name] = append(top.procs[name], newProc(t, fmt.Sprintf("%s-%d", name, i)))
		}
	}
	for _, name := range order {
		for _, p := range top.procs[name] {
			args, err := top.args(name, p, image != "")
			if err != nil {
				t.Fatal(err)
			}
			env, err := top.env(name)
			if err != nil {
				t.Fatal(err)
			}
			if image == "" {
				p.argv, p.env = append([]string{shoalBin}, args...), append(hostEnv(), env...)
			} else if err := top.containerize(name, p, image, args, env); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range order {
		for _, p := range top.procs[name] {
			p.start()
		}
		for _, p := range top.procs[name] {
			if err := p.ready(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.healthy(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	top.gw = top.procs["gateway"][0]
	if top.conn, err = grpc.NewClient(top.gw.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+top.admin), method, req, reply, cc, o...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+top.admin), desc, cc, method, o...)
		})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.conn.Close() })
	return top
}

// args is a process's command line: the compose file's, with the config
// file read from beside it (unless in a container, which mounts it), the
// compose names in --clients.*-address made the replicas' addresses, the
// process's own ports, and the test's flags.
func (top *topology) args(name string, p *proc, inContainer bool) ([]string, error) {
	args := slices.Clone(top.compose.Services[name].Command)
	if !inContainer {
		var err error
		if args, err = top.compose.args(name); err != nil {
			return nil, err
		}
	}
	for i, a := range args {
		flag, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(flag, "--clients.") || !strings.HasSuffix(flag, "-address") {
			continue
		}
		host, _, err := net.SplitHostPort(value)
		if err != nil {
			return nil, fmt.Errorf("compose: %s: %s: %w", name, a, err)
		}
		replicas := top.procs[host]
		if len(replicas) == 0 {
			return nil, fmt.Errorf("compose: %s: %s names no Shoal service of the file", name, a)
		}
		var addrs []string
		for _, r := range replicas {
			addrs = append(addrs, r.grpcAddr)
		}
		args[i] = flag + "=" + strings.Join(addrs, ",")
	}
	args = append(args, "--grpc.listen-address="+p.grpcAddr, "--http.listen-address="+p.httpAddr)
	return append(args, extraFlags[name]...), nil
}

// hostEnv is the test's environment less its SHOAL_* variables: what a
// process inherits besides its service's settings (ONNX Runtime's library
// path among them).
func hostEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// env is the compose file's environment of a service, with the storage
// servers' addresses and credentials made the test's. A setting the
// compose file does not give a service is not given it here either: a
// service that lacks one fails here as it would in Compose.
func (top *topology) env(name string) ([]string, error) {
	var env []string
	for k, v := range top.compose.Services[name].Environment {
		switch k {
		case "SHOAL_DB_DSN":
			var err error
			if v, err = top.dsn(v); err != nil {
				return nil, err
			}
		case "SHOAL_BLOB_S3_ENDPOINT":
			continue // the test's, with the access key below
		case "SHOAL_BLOB_S3_ACCESS_KEY":
			v = top.s3.accessKey
			// The compose files name their own S3 server and bucket;
			// these variables outrank them.
			env = append(env, "SHOAL_BLOB_S3_ENDPOINT="+top.s3.endpoint, "SHOAL_BLOB_S3_BUCKET="+top.bucket)
		case "SHOAL_BLOB_S3_SECRET_KEY":
			v = top.s3.secretKey
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}

// all is every process, in start order.
func (top *topology) all() []*proc {
	var out []*proc
	for _, name := range top.order {
		out = append(out, top.procs[name]...)
	}
	return out
}

// stop ends every process with SIGTERM in the reverse of the start order;
// each must exit cleanly.
func (top *topology) stop() {
	t := top.t
	t.Helper()
	all := top.all()
	for i := len(all) - 1; i >= 0; i-- {
		if err := all[i].stop(); err != nil {
			t.Error(err)
		}
	}
}

// cli runs `shoal` against the gateway's gRPC port with the admin token,
// as a user of the deployment does.
func (top *topology) cli(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, shoalBin, args...)
	cmd.Dir = workRoot
	cmd.Env = append(os.Environ(), "SHOAL_ADDR="+top.gw.grpcAddr, "SHOAL_TOKEN="+top.admin, "NO_COLOR=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func (top *topology) mustCLI(ctx context.Context, args ...string) string {
	top.t.Helper()
	out, errOut, err := top.cli(ctx, args...)
	if err != nil {
		top.t.Fatalf("shoal %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// grpcurl runs grpcurl against the gateway's gRPC port.
func (top *topology) grpcurl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, grpcurlBin, append([]string{"-plaintext"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// counter counts the outcomes of requests made under load.
type counter struct {
	mu       sync.Mutex
	ok       int
	failures []error
}

func (c *counter) add(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.ok++
		return
	}
	c.failures = append(c.failures, err)
}

func (c *counter) result() (int, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok, append([]error(nil), c.failures...)
}

// load runs fn from workers goroutines until ctx ends, counting outcomes;
// wait returns once every worker has stopped. A request cut off by ctx's
// end is not counted.
func load(ctx context.Context, workers int, fn func(context.Context) error) (c *counter, wait func()) {
	c = &counter{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				err := fn(ctx)
				if ctx.Err() != nil {
					return
				}
				c.add(err)
			}
		})
	}
	return c, wg.Wait
}
