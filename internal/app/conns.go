package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"slices"

	"github.com/shoalml/shoal/internal/tlsfiles"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
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
		c, err := grpc.NewClient(target, a.clientOptions(transport(local), creds, !local)...)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("clients: %s at %q: %w", dep, target, err)
		}
		conns[dep] = c
	}
	return conns, nil
}

// clientOptions are the options of every connection to a service.
// Connections to other processes spread calls over every address the name
// resolves to (round robin), so that a headless Service of replicas shares
// the load. A connection to this process's own listener keeps gRPC's
// default (pick first), which leaves a closed connection idle: round robin
// would reconnect at once, and at shutdown log a refused connection for
// each, to a listener that is closing on purpose.
func (a *App) clientOptions(transport credentials.TransportCredentials, creds credentials.PerRPCCredentials, spread bool) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(a.cfg.Server.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(a.cfg.Server.MaxMessageBytes),
		),
	}
	if spread {
		opts = append(opts, grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
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
