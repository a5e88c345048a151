package validate

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeDir = "deployments/compose"

// composeConfigurations are the ways users run the compose project: the
// files given to docker compose -f, in order.
var composeConfigurations = [][]string{
	{"compose.yaml"},
	// The original pipeline's MySQL and MinIO in place of PostgreSQL and
	// SeaweedFS.
	{"compose.yaml", "compose.original.yaml"},
}

// loadCompose loads the files as docker compose would: validated against
// the Compose schema, later files merged over earlier ones (with !override
// and !reset), anchors, merges and paths resolved, and services of a
// profile left out. No variable of the test's environment is visible, so
// the files' defaults apply (their development credentials stand in for
// real ones).
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	dir := filepath.Join(repoRoot, composeDir)
	details := types.ConfigDetails{WorkingDir: dir, Environment: types.Mapping{}}
	for _, f := range files {
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: filepath.Join(dir, f)})
	}
	project, err := loader.LoadWithContext(t.Context(), details)
	if err != nil {
		t.Fatalf("loading %s/%s: %v", composeDir, strings.Join(files, " + "), err)
	}
	return project
}

// isShoal reports whether the service runs the image of deployments/Dockerfile.
func isShoal(s types.ServiceConfig) bool {
	return s.Build != nil && filepath.Join(s.Build.Context, s.Build.Dockerfile) == filepath.Join(repoRoot, dockerfilePath)
}

// composeProcess is what a compose service runs.
func composeProcess(t *testing.T, project *types.Project, s types.ServiceConfig) process {
	t.Helper()
	p := process{where: "compose service " + s.Name, args: s.Command, env: map[string]string{}, files: map[string][]byte{}}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("%s: environment %s takes its value from the host; give it one (a ${VAR:-default})", p.where, k)
			continue
		}
		p.env[k] = *v
	}
	for _, c := range s.Configs {
		cfg, ok := project.Configs[c.Source]
		if !ok || cfg.File == "" {
			t.Errorf("%s: config %q is not a file config of the project", p.where, c.Source)
			continue
		}
		data, err := os.ReadFile(cfg.File)
		if err != nil {
			t.Errorf("%s: config %q: %v", p.where, c.Source, err)
			continue
		}
		target := c.Target
		if target == "" {
			target = "/" + c.Source
		}
		p.files[target] = data
	}
	return p
}

func TestCompose(t *testing.T) {
	for _, files := range composeConfigurations {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			checkComposeProject(t, loadCompose(t, files...))
		})
	}
}

func checkComposeProject(t *testing.T, project *types.Project) {
	var procs []process
	shoal := map[string]types.ServiceConfig{} // by compose service name
	image := ""
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		s := project.Services[name]
		if !isShoal(s) {
			// Pinned, so that every up runs what was validated and tested.
			if _, tag, _ := strings.Cut(s.Image, ":"); tag == "" || tag == "latest" {
				t.Errorf("compose service %s: image %q; want a pinned release tag", name, s.Image)
			}
			continue
		}
		if image == "" {
			image = s.Image
		}
		if s.Image != image || image == "" {
			t.Errorf("compose service %s: image %q; want every Shoal service to tag the one image, %q", name, s.Image, image)
		}
		if len(s.Entrypoint) > 0 {
			t.Errorf("compose service %s: entrypoint %q; want the image's (/shoal)", name, s.Entrypoint)
		}
		shoal[name] = s
		procs = append(procs, composeProcess(t, project, s))
	}
	if len(shoal) == 0 {
		t.Fatalf("no compose service builds %s", dockerfilePath)
	}

	grpcPort := func(service string) (int, bool) {
		s, ok := shoal[service]
		if !ok {
			return 0, false
		}
		return composeProcess(t, project, s).effective(t).port(t, "grpc.listen-address"), true
	}
	// A peer is reached by its compose service name, which Docker's DNS
	// resolves to every replica.
	resolve := func(addr string) (string, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", err
		}
		want, ok := grpcPort(host)
		if !ok {
			return "", fmt.Errorf("host %s is not a Shoal service of compose.yaml", host)
		}
		if port != strconv.Itoa(want) {
			return "", fmt.Errorf("port %s; service %s serves gRPC on %d", port, host, want)
		}
		m, _ := flagArg(shoal[host].Command, "target")
		return m, nil
	}
	ran := checkProcesses(t, procs, resolve)

	probe := ""
	for _, f := range imageFiles(t) {
		if strings.Contains(f, "grpc-health-probe") || strings.Contains(f, "grpc_health_probe") {
			probe = f
		}
	}
	for _, name := range slices.Sorted(maps.Keys(shoal)) {
		s := shoal[name]
		m, _ := flagArg(s.Command, "target")
		r, ok := ran[m]
		if !ok || r.where != "compose service "+name {
			continue // reported by checkProcesses
		}
		t.Run(name, func(t *testing.T) {
			checkComposeService(t, project, s, r, probe)
		})
	}

	// Every dependency that must be healthy can become healthy.
	for _, s := range project.Services {
		for dep, d := range s.DependsOn {
			hc := project.Services[dep].HealthCheck
			if d.Condition == types.ServiceConditionHealthy && (hc == nil || hc.Disable || len(hc.Test) == 0) {
				t.Errorf("compose service %s waits for %s to be healthy, which has no healthcheck", s.Name, dep)
			}
		}
	}
}

// mysqlAddr is the address of a MySQL DSN, user:pass@tcp(host:port)/db.
var mysqlAddr = regexp.MustCompile(`@tcp\(([^)]+)\)/`)

// dsnHost is the host a DSN of the driver names, or "".
func dsnHost(driver, dsn string) string {
	if driver == "mysql" {
		m := mysqlAddr.FindStringSubmatch(dsn)
		if m == nil {
			return ""
		}
		host, _, err := net.SplitHostPort(m[1])
		if err != nil {
			return m[1]
		}
		return host
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func checkComposeService(t *testing.T, project *types.Project, s types.ServiceConfig, r ran, probe string) {
	eff := r.effective
	grpcPort := eff.port(t, "grpc.listen-address")
	httpPort := eff.port(t, "http.listen-address")

	// Healthcheck: the image has no shell or curl, so the probe binary it
	// ships asks the module's own gRPC health status.
	hc := s.HealthCheck
	switch {
	case hc == nil || hc.Disable || len(hc.Test) == 0:
		t.Errorf("no healthcheck")
	case probe == "":
		t.Errorf("healthcheck %q, but %s copies no grpc-health-probe into the image", hc.Test, dockerfilePath)
	default:
		want := []string{"CMD", probe, "-addr=127.0.0.1:" + strconv.Itoa(grpcPort)}
		if svc := healthService(r.module); svc != "" {
			want = append(want, "-service="+svc)
		}
		if !slices.Equal(hc.Test, want) {
			t.Errorf("healthcheck test %q; want %q", hc.Test, want)
		}
		if hc.StartPeriod == nil || time.Duration(*hc.StartPeriod) < eff.duration(t, "db.connect-timeout") {
			t.Errorf("healthcheck start_period %v; want at least db.connect-timeout (%s), the time start may take to reach storage", hc.StartPeriod, eff["db.connect-timeout"])
		}
	}

	// Start after what it needs is healthy: the peers it calls and the
	// storage it uses.
	needs := map[string]string{}
	for _, svc := range r.calls {
		host, _, _ := net.SplitHostPort(eff["clients."+svc+"-address"])
		needs[host] = "it calls " + svc
	}
	if r.needsDB {
		if host := dsnHost(eff["db.driver"], eff["db.dsn"]); host == "" {
			t.Errorf("db.dsn %q: want a DSN naming the database's compose service", eff["db.dsn"])
		} else {
			needs[host] = "it uses the database"
		}
	}
	if r.needsBlob {
		host, _, err := net.SplitHostPort(eff["blob.s3.endpoint"])
		if err != nil {
			host = eff["blob.s3.endpoint"]
		}
		needs[host] = "it uses the blob store"
	}
	for host, why := range needs {
		if _, ok := project.Services[host]; !ok {
			t.Errorf("%s, at %s, which is no service of the project", why, host)
			continue
		}
		if d, ok := s.DependsOn[host]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("depends_on %s: %+v; want condition service_healthy (%s)", host, s.DependsOn[host], why)
		}
	}
	for dep, d := range s.DependsOn {
		if d.Condition != types.ServiceConditionHealthy {
			t.Errorf("depends_on %s: condition %s; want service_healthy", dep, d.Condition)
		}
	}

	// Docker sends SIGKILL after stop_grace_period: the drain must fit.
	if drain := eff.drainTime(t); s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= drain {
		t.Errorf("stop_grace_period %v; want more than server.shutdown-delay + server.shutdown-timeout = %s", s.StopGracePeriod, drain)
	}

	// The same hardening as the Kubernetes pods.
	if !s.ReadOnly {
		t.Errorf("read_only is false; want a read-only root filesystem")
	}
	if !slices.Contains(s.CapDrop, "ALL") {
		t.Errorf("cap_drop %q; want ALL", s.CapDrop)
	}
	if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") && !slices.Contains(s.SecurityOpt, "no-new-privileges") {
		t.Errorf("security_opt %q; want no-new-privileges:true", s.SecurityOpt)
	}
	if u, _, _ := strings.Cut(s.User, ":"); u == "root" || u == "0" {
		t.Errorf("user %q; want the image's non-root user", s.User)
	}
	writable := slices.Contains(s.Tmpfs, "/tmp") || slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/tmp" })
	if !writable {
		t.Errorf("no tmpfs or volume at /tmp; the root filesystem is read-only")
	}

	// Replicas; only the gateway is reachable from the host.
	replicas := s.GetScale()
	if r.module == "inference" && replicas < 2 {
		t.Errorf("%d replica(s); want Inference to run at least 2", replicas)
	}
	if replicas > 1 && s.ContainerName != "" {
		t.Errorf("container_name %q with %d replicas; the names would collide", s.ContainerName, replicas)
	}
	var published []uint32
	for _, p := range s.Ports {
		published = append(published, p.Target)
	}
	if r.module == "gateway" {
		for _, want := range []int{httpPort, grpcPort} {
			if !slices.Contains(published, uint32(want)) {
				t.Errorf("publishes %v; want the gateway to publish its HTTP (%d) and gRPC (%d) ports", published, httpPort, grpcPort)
			}
		}
	} else if len(published) > 0 {
		t.Errorf("publishes %v; want only the gateway reachable from the host", published)
	}
}
