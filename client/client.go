package client

import (
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	oippb "github.com/shoalml/shoal/gen/inference"
	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/tlsfiles"
)

// maxMessageBytes bounds a message either way: the server's default
// (--grpc.max-message-bytes), so a request of many photos, or a large
// answer, is refused by the server's bound rather than the client's 4 MiB.
const maxMessageBytes = 64 << 20

// Client is a connection to a Shoal server (all four services in one
// `shoal serve`, or the address of one service of a split deployment).
// It is safe for concurrent use; Close it when done.
type Client struct {
	conn      *grpc.ClientConn
	dataset   datasetpb.DatasetServiceClient
	trainer   trainerpb.TrainerServiceClient
	registry  registrypb.RegistryServiceClient
	inference inferencepb.InferenceServiceClient
	oip       oippb.GRPCInferenceServiceClient
	auth      authpb.AuthServiceClient
}

// TLS names the PEM files of a TLS connection. The files are read again
// when they change, so a renewed certificate is used without a new Client.
type TLS struct {
	// CAFile holds the CAs that sign the server's certificate; empty: the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are the client's certificate and key, for a
	// server that requires one (mutual TLS); both or neither.
	CertFile, KeyFile string
	// ServerName, when set, is the name checked in the server's
	// certificate instead of the address's host.
	ServerName string
}

type settings struct {
	token     string
	files     *TLS
	tlsConfig *tls.Config
	plaintext bool
	dial      []grpc.DialOption
}

// An Option changes how New connects.
type Option func(*settings)

// WithToken sends token (from `shoal tokens create`, or the admin token a
// new install writes to ./data/admin-token) as "authorization: Bearer" on
// every call. Without it calls are anonymous: by default a server lets
// them predict and nothing else.
func WithToken(token string) Option { return func(s *settings) { s.token = token } }

// WithTLS speaks TLS with the given files; the zero TLS trusts the
// system's roots.
func WithTLS(t TLS) Option { return func(s *settings) { s.files = &t } }

// WithTLSConfig speaks TLS with a configuration the caller built.
func WithTLSConfig(cfg *tls.Config) Option { return func(s *settings) { s.tlsConfig = cfg.Clone() } }

// WithPlaintext speaks plaintext to any address, e.g. a server inside a
// private network; the token, if any, then travels unencrypted.
func WithPlaintext() Option { return func(s *settings) { s.plaintext = true } }

// WithDialOptions adds gRPC dial options (interceptors, keepalive, a
// resolver); they apply after the Client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dial = append(s.dial, opts...) }
}

// New returns a Client of the server at addr ("host:port", or any gRPC
// target such as "dns:///shoal.example.com:9090"). It does not connect
// yet: the first call does, and a server that cannot be reached fails
// that call with ErrUnavailable.
//
// The transport is TLS with the system's roots, except to a loopback
// address (localhost, 127.0.0.1, ::1), which gets plaintext, as a local
// `shoal serve` speaks it; WithTLS, WithTLSConfig or WithPlaintext choose
// explicitly.
func New(addr string, opts ...Option) (*Client, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	creds, err := s.credentials(addr)
	if err != nil {
		return nil, err
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		// Errors come back as *Error from every call, the raw service
		// clients' included.
		grpc.WithChainUnaryInterceptor(unaryErrors),
		grpc.WithChainStreamInterceptor(streamErrors),
	}
	if s.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(auth.Bearer(s.token)))
	}
	conn, err := grpc.NewClient(addr, append(dial, s.dial...)...)
	if err != nil {
		return nil, fmt.Errorf("client.New(%q): %w", addr, err)
	}
	return &Client{
		conn:      conn,
		dataset:   datasetpb.NewDatasetServiceClient(conn),
		trainer:   trainerpb.NewTrainerServiceClient(conn),
		registry:  registrypb.NewRegistryServiceClient(conn),
		inference: inferencepb.NewInferenceServiceClient(conn),
		oip:       oippb.NewGRPCInferenceServiceClient(conn),
		auth:      authpb.NewAuthServiceClient(conn),
	}, nil
}

func (s settings) credentials(addr string) (credentials.TransportCredentials, error) {
	chosen := 0
	for _, on := range []bool{s.files != nil, s.tlsConfig != nil, s.plaintext} {
		if on {
			chosen++
		}
	}
	switch {
	case chosen > 1:
		return nil, errors.New("client.New: WithTLS, WithTLSConfig and WithPlaintext exclude one another")
	case s.plaintext, chosen == 0 && auth.Loopback(addr):
		return insecure.NewCredentials(), nil
	case s.tlsConfig != nil:
		return credentials.NewTLS(s.tlsConfig), nil
	}
	files := tlsfiles.Client{Enabled: true}
	if s.files != nil {
		files.CAFile, files.CertFile, files.KeyFile, files.ServerName = s.files.CAFile, s.files.CertFile, s.files.KeyFile, s.files.ServerName
	}
	cfg, err := files.Config()
	if err != nil {
		return nil, fmt.Errorf("client.New: TLS: %w", err)
	}
	return credentials.NewTLS(cfg), nil
}

// Close ends the connection; calls still in flight fail with code
// Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection, for other gRPC clients (health,
// reflection) on the same transport and credentials.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Dataset is the Dataset service's generated client: datasets, imports,
// uploads, images, snapshots.
func (c *Client) Dataset() datasetpb.DatasetServiceClient { return c.dataset }

// Trainer is the Trainer service's generated client: training jobs.
func (c *Client) Trainer() trainerpb.TrainerServiceClient { return c.trainer }

// Registry is the Registry service's generated client: models, versions,
// aliases.
func (c *Client) Registry() registrypb.RegistryServiceClient { return c.registry }

// Inference is the Inference service's generated client: Predict and the
// loaded models.
func (c *Client) Inference() inferencepb.InferenceServiceClient { return c.inference }

// OpenInference is the Open Inference Protocol's (KServe v2) generated
// client: ModelInfer on tensors, model metadata, readiness.
func (c *Client) OpenInference() oippb.GRPCInferenceServiceClient { return c.oip }

// Auth is the Auth service's generated client: tokens, the caller, the
// audit trail.
func (c *Client) Auth() authpb.AuthServiceClient { return c.auth }
