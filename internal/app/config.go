package app

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/tlsfiles"
	"github.com/shoalml/shoal/internal/tracing"
	authsvc "github.com/shoalml/shoal/services/auth"
	"github.com/shoalml/shoal/services/dataset"
	"github.com/shoalml/shoal/services/inference"
	"github.com/shoalml/shoal/services/registry"
	"github.com/shoalml/shoal/services/trainer"
)

// Config is the whole process's configuration.
type Config struct {
	Target    string
	LogLevel  string
	LogFormat string
	Server    server.Config
	DB        db.Config
	Blob      blob.Config
	Clients   ClientsConfig
	Tracing   tracing.Config
	// ONNXRuntime is shared by the services that load ONNX models
	// (Registry, Inference): one runtime per process.
	ONNXRuntime onnxrt.Config
	// Gate is the auth gate's configuration, in every process.
	Gate      auth.Config
	Auth      authsvc.Config
	Dataset   dataset.Config
	Trainer   trainer.Config
	Registry  registry.Config
	Inference inference.Config
	// GatewayMaxPredicts bounds the inference requests the gateway
	// forwards at once (see MaxPredicts).
	GatewayMaxPredicts int
	// GatewayLatencyTarget adapts that bound (see PredictLatencyTarget).
	GatewayLatencyTarget time.Duration
}

// ClientsConfig says where the services that do not run in this process
// are, and how to reach them.
type ClientsConfig struct {
	Addresses map[string]*string
	// TLS is how this process calls services of other processes.
	TLS tlsfiles.Client
}

// RegisterFlags registers every flag of the process with its default.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Target, "target", All, "what this process runs: all, or a comma-separated list of "+strings.Join(Modules, ", "))
	fs.StringVar(&c.LogLevel, "log.level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log.format", "text", "log format: text or json")
	c.Server.RegisterFlags(fs)
	c.DB.RegisterFlags(fs)
	c.Blob.RegisterFlags(fs)
	c.Clients.RegisterFlags(fs)
	c.Tracing.RegisterFlags(fs)
	c.ONNXRuntime.RegisterFlags(fs)
	c.Gate.RegisterFlags(fs)
	c.Auth.RegisterFlags(fs)
	c.Dataset.RegisterFlags(fs)
	c.Trainer.RegisterFlags(fs)
	c.Registry.RegisterFlags(fs)
	c.Inference.RegisterFlags(fs)
	fs.IntVar(&c.GatewayMaxPredicts, "gateway.max-predicts", 0,
		"most inference requests (POST /predict, /v1/models/{m}:predict, /v2/models/{m}/infer) the gateway forwards at once; beyond it they get 429 with Retry-After before their body is read. "+
			"0: as many as this process's Inference admits (inference.queue-size + inference.sessions × inference.max-batch-size) when it runs here, else no bound")
	fs.DurationVar(&c.GatewayLatencyTarget, "gateway.latency-target", 0,
		"shrink the gateway's bound on inference requests in flight (--gateway.max-predicts) so that 99% of those it forwards are answered within this time from their receipt; beyond it they get 429 with Retry-After before their body is read. "+
			"0: --inference.latency-target when Inference runs in this process, else none")
}

// PredictLatencyTarget is the latency the gateway's bound on inference
// requests follows, from its receipt of a request to the answer:
// --gateway.latency-target, or by default --inference.latency-target when
// Inference runs in this process (its own limit counts from admission, and
// the gateway's covers the hop before it); none in a split gateway unless set.
func (c *Config) PredictLatencyTarget(targets []string) time.Duration {
	if c.GatewayLatencyTarget > 0 || !slices.Contains(targets, Inference) {
		return c.GatewayLatencyTarget
	}
	return c.Inference.LatencyTarget
}

// MaxPredicts is the gateway's bound on inference requests in flight:
// --gateway.max-predicts, or by default what this process's Inference
// admits; in a gateway of a split deployment, none unless set (its
// inference.* settings are not the replicas').
func (c *Config) MaxPredicts(targets []string) int {
	if c.GatewayMaxPredicts > 0 || !slices.Contains(targets, Inference) {
		return c.GatewayMaxPredicts
	}
	return c.Inference.QueueSize + c.Inference.Sessions*c.Inference.MaxBatchSize
}

// RegisterFlags registers clients.<service>-address for each service.
func (c *ClientsConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Addresses = map[string]*string{}
	for _, s := range Services {
		c.Addresses[s] = fs.String("clients."+s+"-address", "",
			"host:port of the "+s+" service's gRPC server, when it does not run in this process (a name that resolves to every replica, or a comma-separated list of the replicas' host:port; dns://SERVER/host:port resolves the name with that DNS server)")
	}
	fs.BoolVar(&c.TLS.Enabled, "clients.tls", false, "call the services of other processes over TLS (the system's CAs unless --clients.tls-ca-file)")
	fs.StringVar(&c.TLS.CAFile, "clients.tls-ca-file", "", "PEM CAs that sign the other processes' gRPC certificates (implies --clients.tls)")
	fs.StringVar(&c.TLS.CertFile, "clients.tls-cert-file", "", "PEM client certificate this process presents to the others (mutual TLS)")
	fs.StringVar(&c.TLS.KeyFile, "clients.tls-key-file", "", "PEM private key of --clients.tls-cert-file")
	fs.StringVar(&c.TLS.ServerName, "clients.tls-server-name", "", "name to check in the other processes' certificates instead of the host of their address")
}

// Validate checks each section, then the rules that span sections.
func (c *Config) Validate() error {
	targets, err := ParseTarget(c.Target)
	if err != nil {
		return err
	}
	errs := []error{c.Server.Validate(), c.Gate.Validate(), c.Tracing.Validate()}
	if _, err := c.Clients.TLS.Config(); err != nil {
		errs = append(errs, fmt.Errorf("--clients.tls-*: %w", err))
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.GatewayLatencyTarget < 0 {
		errs = append(errs, fmt.Errorf("--gateway.latency-target=%s: must not be negative", c.GatewayLatencyTarget))
	}
	if c.GatewayMaxPredicts < 0 {
		errs = append(errs, fmt.Errorf("--gateway.max-predicts=%d: must not be negative", c.GatewayMaxPredicts))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log.format=%q: use text or json", c.LogFormat))
	}
	need := needs(targets)
	if need.db {
		errs = append(errs, c.DB.Validate())
	}
	if need.blob {
		errs = append(errs, c.Blob.Validate())
	}
	if slices.Contains(targets, Registry) || slices.Contains(targets, Inference) {
		errs = append(errs, c.ONNXRuntime.Validate())
	}
	for _, section := range []struct {
		name string
		v    interface{ Validate() error }
	}{{Auth, &c.Auth}, {Dataset, &c.Dataset}, {Trainer, &c.Trainer}, {Registry, &c.Registry}, {Inference, &c.Inference}} {
		if slices.Contains(targets, section.name) {
			errs = append(errs, section.v.Validate())
		}
	}

	// A process that runs only some services is one of several: the
	// others must reach the same state, so storage that lives inside one
	// process cannot be used.
	if !runsAll(targets) {
		where := "--target=" + strings.Join(targets, ",")
		if need.db && !c.DB.Shared() {
			errs = append(errs, fmt.Errorf("--db.driver=%s keeps its data in a file of this process, which the other processes of a split deployment (%s) cannot share: set --db.driver=postgres or mysql with --db.dsn, or run everything in one process with --target=all", c.DB.Driver, where))
		}
		if need.blob && !c.Blob.Shared() {
			errs = append(errs, fmt.Errorf("--blob.backend=%s keeps blobs on this machine's disk, which the other processes of a split deployment (%s) cannot share: set --blob.backend=s3 with --blob.s3.endpoint and --blob.s3.bucket, or run everything in one process with --target=all", c.Blob.Backend, where))
		}
		if !c.Gate.Disabled && c.Gate.ServiceToken == "" {
			errs = append(errs, fmt.Errorf("the processes of a split deployment (%s) prove to each other that they are Shoal's with a shared secret: set --auth.service-token (at least 32 characters, the same in every process)", where))
		}
	}
	gatedHere := slices.ContainsFunc(targets, func(m string) bool { return slices.Contains(gated, m) })
	if (gatedHere && !c.Gate.Disabled || slices.Contains(targets, Gateway)) && !slices.Contains(targets, Auth) && *c.Clients.Addresses[Auth] == "" {
		errs = append(errs, errors.New("tokens are checked, and the REST API's /v1/tokens served, by the auth service, which this process does not run: add it to --target or set --clients.auth-address=HOST:PORT"))
	}
	for _, s := range Services {
		switch list := addressList(*c.Clients.Addresses[s]); {
		case len(list) == 1:
			if _, err := dialTarget(list[0]); err != nil {
				errs = append(errs, fmt.Errorf("--clients.%s-address: %w", s, err))
			}
		default:
			for _, addr := range list {
				if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
					errs = append(errs, fmt.Errorf("--clients.%s-address: %q is not host:port", s, addr))
				}
			}
		}
	}
	for _, m := range targets {
		for _, dep := range calls[m] {
			if dep != Auth && !slices.Contains(targets, dep) && *c.Clients.Addresses[dep] == "" {
				errs = append(errs, fmt.Errorf("%s calls the %s service, which this process does not run: add it to --target or set --clients.%s-address=HOST:PORT", m, dep, dep))
			}
		}
	}
	return errors.Join(errs...)
}

// ParseLogLevel parses a --log.level value.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log.level=%q: use debug, info, warn or error", s)
	}
	return l, nil
}

// Secret masks the values of settings that hold credentials, for
// --print-config.
func Secret(name, value string) string {
	if value == "" {
		return value
	}
	switch {
	case strings.Contains(name, "secret"), strings.Contains(name, "password"), strings.HasSuffix(name, "-token"):
		return "****"
	case name == "db.dsn":
		return redactDSN(value)
	}
	return value
}

// redactDSN hides the password in the three DSN forms: URL
// (postgres://u:p@h/db), MySQL (u:p@tcp(h)/db) and key=value (password=p).
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(dsn, "@"); at > 0 && !strings.Contains(dsn[:at], "=") {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
			return dsn[:colon+1] + "****" + dsn[at:]
		}
		return dsn
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=****"
		}
	}
	return strings.Join(fields, " ")
}
