package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"

	"github.com/shoalml/shoal/client"
	"github.com/shoalml/shoal/internal/tlsfiles/tlstest"
)

// A server that requires client certificates (mutual TLS) answers a Client
// with the CA and a certificate, and refuses the others: without a
// certificate, trusting only the system's roots, or in plaintext.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caFile := ca.WriteCA(t, dir, "ca.crt")
	serverCert, serverKey := ca.Issue(t, dir, "server", 10)
	clientCert, clientKey := ca.Issue(t, dir, "client", 20)
	cfg := defaults(t)
	cfg.Server.GRPCTLS.CertFile, cfg.Server.GRPCTLS.KeyFile, cfg.Server.GRPCTLS.ClientCAFile = serverCert, serverKey, caFile
	cfg.Clients.TLS.CAFile, cfg.Clients.TLS.CertFile, cfg.Clients.TLS.KeyFile = caFile, serverCert, serverKey
	mutual := client.TLS{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey}
	s := serve(t, cfg, client.WithTLS(mutual))
	_, port, _ := net.SplitHostPort(s.addr)

	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	// A name that is not loopback, dialled to the server: TLS by default.
	remote := "passthrough:///shoal.test:" + port
	toServer := client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	}))

	for _, tc := range []struct {
		name string
		addr string
		opts []client.Option
		ok   bool
		says string // what the ErrUnavailable says, unless ok
	}{
		{"mutual TLS", s.addr, []client.Option{client.WithTLS(mutual)}, true, ""},
		{"mutual TLS to localhost", "localhost:" + port, []client.Option{client.WithTLS(mutual)}, true, ""},
		{"a configuration of the caller's", s.addr, []client.Option{client.WithTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})}, true, ""},
		{"another name, checked as localhost", remote, []client.Option{toServer, client.WithTLS(client.TLS{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey, ServerName: "localhost"})}, true, ""},
		// Under TLS 1.3 the server refuses after the client's half of the
		// handshake, and the client sees an alert or a closed connection.
		{"no client certificate", s.addr, []client.Option{client.WithTLS(client.TLS{CAFile: caFile})}, false, ""},
		{"the system's roots", s.addr, []client.Option{client.WithTLS(client.TLS{})}, false, "certificate"},
		{"another name, by default", remote, []client.Option{toServer}, false, "certificate"},
		// A loopback address gets plaintext, which a TLS listener refuses.
		{"plaintext to loopback, by default", s.addr, nil, false, "server preface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.addr, append(tc.opts, client.WithToken(s.admin))...)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			_, err := c.Registry().ListModels(ctx, &registrypb.ListModelsRequest{})
			switch {
			case tc.ok && err != nil:
				t.Errorf("ListModels() = %v; want an answer", err)
			case !tc.ok && (!errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("ListModels() = %v; want ErrUnavailable saying %q", err, tc.says)
			}
		})
	}

	for _, opts := range [][]client.Option{
		{client.WithTLS(mutual), client.WithPlaintext()},
		{client.WithTLS(client.TLS{CertFile: clientCert})},
		{client.WithTLS(client.TLS{CAFile: dir + "/missing.crt"})},
	} {
		if c, err := client.New(s.addr, opts...); err == nil {
			c.Close()
			t.Errorf("client.New(%d conflicting or broken options) = nil error; want one", len(opts))
		}
	}
}
