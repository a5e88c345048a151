package split

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// postgres is a PostgreSQL server of the test's own (its data folder and
// port; never the shared server other tests use), so that the test may
// restart it. It runs as the postgres user, as PostgreSQL requires.
type postgres struct {
	t    *testing.T
	bin  string // the folder of initdb, pg_ctl and psql
	dir  string
	port int
}

// startPostgres initialises and starts the server, with the role and
// database the compose file's DSN names (trust authentication: the DSN's
// password is not checked).
func startPostgres(t *testing.T, role, database string) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/pg_ctl); scripts/test-sql.sh names the packages")
	}
	slices.SortFunc(bins, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user to run PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p := &postgres{t: t, bin: filepath.Dir(bins[0]), dir: filepath.Join(workRoot, "postgres"), port: freePort(t)}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p.dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	p.run("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	t.Cleanup(func() { _ = p.cmd("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop").Run() })
	p.start()
	p.run("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc",
		fmt.Sprintf("CREATE ROLE %s LOGIN", role))
	p.run("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc",
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", database, role))
	return p
}

func pgMajor(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

func (p *postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *postgres) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

func (p *postgres) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	cmd.Dir = p.dir
	return cmd
}

func (p *postgres) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.cmd(name, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// start starts the server on its port and waits until it accepts
// connections.
func (p *postgres) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir)
	p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
}

// stop shuts the server down as an operator or a failover does: clients
// are disconnected at once and new connections refused until start.
func (p *postgres) stop() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.data(), "-m", "fast", "-w", "stop")
}
