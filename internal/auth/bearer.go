package auth

import (
	"context"
	"net"
	"strings"
)

// Bearer is a client's per-call credential: the token, sent as
// "authorization: Bearer <token>" on every call.
type Bearer string

// GetRequestMetadata returns the authorization header.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: a local server speaks plaintext; the
// transport's own settings say when to use TLS beyond the machine.
func (Bearer) RequireTransportSecurity() bool { return false }

// Loopback reports whether the gRPC address addr names this machine:
// where a client may send a token without TLS, or the admin token a local
// server wrote. addr is host:port, a bare host, or a gRPC target such as
// "dns:///localhost:9090" or "unix:///run/shoal.sock".
func Loopback(addr string) bool {
	if scheme, rest, ok := strings.Cut(addr, ":"); ok {
		switch {
		case scheme == "unix" || scheme == "unix-abstract":
			return true
		case strings.HasPrefix(rest, "//"):
			// scheme://[authority]/endpoint: the endpoint is the address.
			_, addr, _ = strings.Cut(rest[2:], "/")
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
