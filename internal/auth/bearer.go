package auth

import "context"

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
