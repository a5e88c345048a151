package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/reflect/protoregistry"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/tlsfiles"
)

// Connections between services: transport credentials, dialling, and the
// metadata that carries the service identity.

// transports returns the transport credentials of a connection to a
// service: TLS to other processes when --clients.tls-* say so, and to this
// process's own listener when it speaks TLS, trusting exactly its own
// certificate (loopback matches no name in it) and presenting the client
// certificate, or the listener's own, when it asks for one.
func (a *App) transports(own *tlsfiles.KeyPair) (func(local bool) credentials.TransportCredentials, error) {
	remote, err := a.cfg.Clients.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("clients tls: %w", err)
	}
	clientCert := own
	if c := a.cfg.Clients.TLS; c.CertFile != "" {
		clientCert = tlsfiles.NewKeyPair(c.CertFile, c.KeyFile)
	}
	return func(local bool) credentials.TransportCredentials {
		switch {
		case local && own != nil:
			return credentials.NewTLS(tlsfiles.Pinned(own, clientCert))
		case !local && remote != nil:
			return credentials.NewTLS(remote)
		}
		return insecure.NewCredentials()
	}, nil
}

// dial opens a client connection to each of deps, every call carrying the
// metadata of creds.
func (a *App) dial(self net.Addr, deps []string, transport func(local bool) credentials.TransportCredentials, creds metadataCreds) (map[string]*grpc.ClientConn, error) {
	conns := map[string]*grpc.ClientConn{}
	for _, dep := range deps {
		target := *a.cfg.Clients.Addresses[dep]
		local := slices.Contains(a.targets, dep)
		if local {
			target = loopback(self)
		}
		opts := a.clientOptions(transport(local), creds, !local)
		list := addressList(target)
		switch {
		case local:
		case len(list) > 1:
			// A list of replicas' addresses: each is one backend of the
			// connection's round robin, as the addresses of a name are.
			r := manual.NewBuilderWithScheme("shoal-replicas")
			state := resolver.State{}
			for _, addr := range list {
				state.Addresses = append(state.Addresses, resolver.Address{Addr: addr})
			}
			r.InitialState(state)
			// TLS checks the first replica's host name (replicas of one
			// service share a certificate), unless clients.tls-server-name.
			opts = append(opts, grpc.WithResolvers(r), grpc.WithAuthority(list[0]))
			target = r.Scheme() + ":///" + dep
		default:
			t, err := dialTarget(strings.TrimSpace(target))
			if err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("clients: %s: %w", dep, err)
			}
			target = t
		}
		c, err := grpc.NewClient(target, opts...)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("clients: %s at %q: %w", dep, target, err)
		}
		conns[dep] = c
	}
	return conns, nil
}

// addressList splits a clients.*-address into its comma-separated
// addresses.
func addressList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// dialTarget is the gRPC target of a clients.*-address naming one host:
// gRPC's DNS resolver (dns:///host:port), which hands the round robin every
// address the name resolves to — each pod of a headless Service — and
// resolves again whenever a connection closes, so pods added since join
// the rotation (the servers' MaxConnectionAge closes every connection
// within a minute for this; see internal/server). dns://SERVER/host:port
// asks that DNS server instead of the system's.
func dialTarget(addr string) (string, error) {
	endpoint := addr
	if strings.HasPrefix(addr, "dns:") {
		u, err := url.Parse(addr)
		if err != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("%q is neither host:port nor dns://[SERVER]/host:port", addr)
		}
		endpoint = strings.TrimPrefix(u.Path, "/")
	}
	if host, port, err := net.SplitHostPort(endpoint); err != nil || host == "" || port == "" {
		return "", fmt.Errorf("%q is neither host:port nor dns://[SERVER]/host:port", addr)
	}
	if endpoint == addr {
		return "dns:///" + addr, nil
	}
	return addr, nil
}

// retryBufferBytes is how much of a call's request a connection to other
// processes keeps for retrying it on another replica: a photo for Predict
// fits; a call that sends more is not retried.
const retryBufferBytes = 16 << 20

// spreadConfig is the service config of connections to other processes:
// round robin over the replicas, and calls that change nothing (the read
// and predict scopes: Predict, ModelInfer, Get*, List*, Watch* before
// their first event) retried on another replica when one fails with
// UNAVAILABLE — a replica that died or is stopping — so that losing a
// replica fails none of them. Calls that write are never retried: their
// first attempt may have taken effect.
var spreadConfig = sync.OnceValue(func() string {
	roundRobin := `{"loadBalancingConfig":[{"round_robin":{}}]}`
	rules, err := auth.NewRules(protoregistry.GlobalFiles)
	if err != nil {
		// A method without a scope: the auth gate refuses to start with
		// the same error, so nothing is called without its policy.
		return roundRobin
	}
	type name struct {
		Service string `json:"service"`
		Method  string `json:"method"`
	}
	var names []name
	for _, m := range rules.Methods(authpb.Scope_SCOPE_READ, authpb.Scope_SCOPE_PREDICT, authpb.Scope_SCOPE_PUBLIC) {
		svc, method, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		names = append(names, name{svc, method})
	}
	cfg := map[string]any{
		"loadBalancingConfig": []any{map[string]any{"round_robin": map[string]any{}}},
		"methodConfig": []any{map[string]any{
			"name": names,
			// Four attempts, 0.1 s to 1 s apart (gRPC draws each wait
			// at random below the backoff): a replica that died is out
			// of the rotation by the second.
			"retryPolicy": map[string]any{
				"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
				"retryableStatusCodes": []string{"UNAVAILABLE"},
			},
		}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return roundRobin
	}
	return string(b)
})

// clientOptions are the options of every connection to a service.
// Connections to other processes spread calls over every address the name
// resolves to (round robin), so that a headless Service of replicas shares
// the load, and retry the calls that change nothing on another replica
// (see spreadConfig); each call is a span of the caller's trace, whose
// context goes along, and is counted in the process's grpc_client_*
// metrics (once, however many attempts its retries take). A connection to this process's own listener keeps
// gRPC's default (pick first), which leaves a closed connection idle:
// round robin would reconnect at once, and at shutdown log a refused
// connection for each, to a listener that is closing on purpose.
func (a *App) clientOptions(transport credentials.TransportCredentials, creds credentials.PerRPCCredentials, spread bool) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(a.cfg.Server.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(a.cfg.Server.MaxMessageBytes),
		),
		grpc.WithChainUnaryInterceptor(a.rpcClient.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(a.rpcClient.StreamClientInterceptor()),
	}
	if a.tracer != nil {
		opts = append(opts, grpc.WithStatsHandler(a.tracer.ClientHandler()))
	}
	if spread {
		opts = append(opts, grpc.WithDefaultServiceConfig(spreadConfig()),
			grpc.WithDefaultCallOptions(grpc.MaxRetryRPCBufferSize(retryBufferBytes)))
	}
	return opts
}

func closeAll(conns map[string]*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// metadataCreds adds fixed metadata to every call of a connection.
type metadataCreds map[string]string

func (m metadataCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return m, nil
}

// RequireTransportSecurity is false: the service secret crosses loopback in
// one process, and the deployment's network (or its TLS) in a split one.
func (metadataCreds) RequireTransportSecurity() bool { return false }

// proxyHeader marks the gateway's calls (see internal/auth).
const proxyHeader = "x-shoal-proxy"

func randomSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
