package app_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/app"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want []string // substrings of the error; none means valid
	}{
		{name: "defaults", set: nil},
		{name: "unknown target", set: map[string]string{"target": "dataset,bogus"}, want: []string{`unknown module "bogus"`}},
		{name: "empty target", set: map[string]string{"target": ""}, want: []string{"--target is empty"}},
		{name: "inference alone on local blobs", set: map[string]string{"target": "inference", "clients.registry-address": "registry:9090"},
			want: []string{"--blob.backend=local keeps blobs on this machine's disk", "--target=inference", "--blob.backend=s3"}},
		{name: "dataset alone on sqlite", set: map[string]string{"target": "dataset", "blob.backend": "s3", "blob.s3.endpoint": "s3:9000", "blob.s3.bucket": "shoal"},
			want: []string{"--db.driver=sqlite keeps its data in a file of this process", "--db.driver=postgres or mysql"}},
		{name: "split mode on shared storage", set: map[string]string{"target": "dataset", "db.driver": "postgres", "db.dsn": "postgres://u@db/shoal", "blob.backend": "s3", "blob.s3.endpoint": "s3:9000", "blob.s3.bucket": "shoal", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"}},
		{name: "split mode without a service token", set: map[string]string{"target": "dataset", "db.driver": "postgres", "db.dsn": "postgres://u@db/shoal", "blob.backend": "s3", "blob.s3.endpoint": "s3:9000", "blob.s3.bucket": "shoal"},
			want: []string{"--auth.service-token", "--clients.auth-address"}},
		{name: "split mode with auth off", set: map[string]string{"target": "inference", "blob.backend": "s3", "blob.s3.endpoint": "s3:9000", "blob.s3.bucket": "shoal", "clients.registry-address": "r:1", "auth.disabled": "true"}},
		{name: "gateway alone needs addresses", set: map[string]string{"target": "gateway"},
			want: []string{"gateway calls the dataset service", "--clients.dataset-address", "--clients.inference-address"}},
		{name: "gateway alone with addresses", set: map[string]string{"target": "gateway", "clients.dataset-address": "d:1", "clients.trainer-address": "t:1", "clients.registry-address": "r:1", "clients.inference-address": "i:1", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"}},
		{name: "gateway with a list of replicas", set: map[string]string{"target": "gateway", "clients.dataset-address": "d:1", "clients.trainer-address": "t1:1, t2:1", "clients.registry-address": "r:1", "clients.inference-address": "127.0.0.1:9191,127.0.0.1:9192", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"}},
		{name: "a replica without a port", set: map[string]string{"target": "gateway", "clients.dataset-address": "d:1", "clients.trainer-address": "t:1", "clients.registry-address": "r:1", "clients.inference-address": "i:1,i2", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"},
			want: []string{`--clients.inference-address: "i2" is not host:port`}},
		{name: "gateway with dns targets", set: map[string]string{"target": "gateway", "clients.dataset-address": "dns:///d:1", "clients.trainer-address": "dns://10.0.0.10:53/t:1", "clients.registry-address": "r:1", "clients.inference-address": "dns:///[::1]:9191", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"}},
		{name: "a dns target without a port", set: map[string]string{"target": "gateway", "clients.dataset-address": "d:1", "clients.trainer-address": "t:1", "clients.registry-address": "r:1", "clients.inference-address": "dns:///inference", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"},
			want: []string{`--clients.inference-address: "dns:///inference" is neither host:port nor dns://[SERVER]/host:port`}},
		{name: "an address without a port", set: map[string]string{"target": "gateway", "clients.dataset-address": "d:1", "clients.trainer-address": "t:1", "clients.registry-address": "r:1", "clients.inference-address": "inference", "auth.service-token": "0123456789abcdef0123456789abcdef", "clients.auth-address": "a:1"},
			want: []string{`--clients.inference-address: "inference" is neither host:port`}},
		{name: "trainer without registry", set: map[string]string{"target": "trainer,dataset", "db.driver": "mysql", "db.dsn": "root@tcp(db)/shoal", "blob.backend": "s3", "blob.s3.endpoint": "s3:9000", "blob.s3.bucket": "shoal"},
			want: []string{"trainer calls the registry service"}},
		{name: "bad log level", set: map[string]string{"log.level": "loud"}, want: []string{"--log.level"}},
		{name: "bad address", set: map[string]string{"grpc.listen-address": "9090"}, want: []string{"--grpc.listen-address"}},
		{name: "tiny messages", set: map[string]string{"grpc.max-message-bytes": "1024"}, want: []string{"photos need at least"}},
		{name: "unknown db driver", set: map[string]string{"db.driver": "oracle"}, want: []string{"oracle"}},
		{name: "postgres without dsn", set: map[string]string{"db.driver": "postgres"}, want: []string{"db.dsn"}},
		{name: "negative predict bound", set: map[string]string{"gateway.max-predicts": "-1"}, want: []string{"--gateway.max-predicts"}},
		{name: "negative gateway latency target", set: map[string]string{"gateway.latency-target": "-1s"}, want: []string{"--gateway.latency-target"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg app.Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			for k, v := range tt.set {
				if err := fs.Set(k, v); err != nil {
					t.Fatalf("Set(%s, %s) = %v", k, v, err)
				}
			}
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretMasksCredentials(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"blob.s3.secret-key", "hunter2", "****"},
		{"db.dsn", "postgres://shoal:hunter2@db:5432/shoal", "postgres://shoal:xxxxx@db:5432/shoal"},
		{"db.dsn", "shoal:hunter2@tcp(db:3306)/shoal", "shoal:****@tcp(db:3306)/shoal"},
		{"db.dsn", "host=db user=shoal password=hunter2 dbname=shoal", "host=db user=shoal password=**** dbname=shoal"},
		{"db.dsn", "./data/shoal.db", "./data/shoal.db"},
		{"target", "all", "all"},
	}
	for _, tt := range tests {
		if got := app.Secret(tt.name, tt.value); got != tt.want {
			t.Errorf("Secret(%s, %q) = %q; want %q", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestModulesStartAfterWhatTheyCall(t *testing.T) {
	for i, m := range app.Modules {
		for _, dep := range app.Calls(m) {
			j := indexOf(app.Modules, dep)
			if j < 0 || j >= i {
				t.Errorf("module %s calls %s, which starts at position %d, not before %d: reorder Modules", m, dep, j, i)
			}
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// The gateway's /predict bound: what the process's own Inference admits,
// none in a gateway without Inference, the setting whenever it is set.
func TestMaxPredicts(t *testing.T) {
	var cfg app.Config
	cfg.RegisterFlags(flag.NewFlagSet("serve", flag.ContinueOnError))
	admits := cfg.Inference.QueueSize + cfg.Inference.Sessions*cfg.Inference.MaxBatchSize
	for _, tt := range []struct {
		set     int
		targets []string
		want    int
	}{
		{0, []string{app.Gateway, app.Inference}, admits},
		{0, []string{app.Gateway}, 0},
		{100, []string{app.Gateway}, 100},
		{100, []string{app.Gateway, app.Inference}, 100},
	} {
		cfg.GatewayMaxPredicts = tt.set
		if got := cfg.MaxPredicts(tt.targets); got != tt.want {
			t.Errorf("MaxPredicts(%v) with --gateway.max-predicts=%d = %d; want %d", tt.targets, tt.set, got, tt.want)
		}
	}
}

// The gateway's latency target: the process's own Inference's, none in a
// gateway without Inference, the setting whenever it is set.
func TestPredictLatencyTarget(t *testing.T) {
	var cfg app.Config
	cfg.RegisterFlags(flag.NewFlagSet("serve", flag.ContinueOnError))
	cfg.Inference.LatencyTarget = 150 * time.Millisecond
	for _, tt := range []struct {
		set     time.Duration
		targets []string
		want    time.Duration
	}{
		{0, []string{app.Gateway, app.Inference}, 150 * time.Millisecond},
		{0, []string{app.Gateway}, 0},
		{time.Second, []string{app.Gateway}, time.Second},
		{time.Second, []string{app.Gateway, app.Inference}, time.Second},
	} {
		cfg.GatewayLatencyTarget = tt.set
		if got := cfg.PredictLatencyTarget(tt.targets); got != tt.want {
			t.Errorf("PredictLatencyTarget(%v) with --gateway.latency-target=%v = %v; want %v", tt.targets, tt.set, got, tt.want)
		}
	}
}
