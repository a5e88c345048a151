// Package client is Shoal's Go SDK: a connection to a Shoal server with
// helpers for the common paths — classify images, follow a training job,
// upload a folder of labelled images — and the generated gRPC clients of
// every service for everything else.
//
//	go get github.com/shoalml/shoal/client
//
// Connect with an address and, for anything beyond prediction, a token:
//
//	c, err := client.New("localhost:9090", client.WithToken(os.Getenv("SHOAL_TOKEN")))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	resp, err := c.PredictFiles(ctx, []string{"shoe.png"}, client.Model("fashion"), client.TopK(3))
//
// A loopback address gets plaintext, as a local `shoal serve` speaks it;
// any other gets TLS with the system's roots unless WithTLS (a CA file, a
// client certificate for mutual TLS), WithTLSConfig or WithPlaintext says
// otherwise.
//
// # Errors
//
// A call that fails returns an *Error carrying the gRPC code and the
// server's message; errors.Is matches it against ErrNotFound,
// ErrInvalidArgument, ErrUnauthenticated, ErrPermissionDenied,
// ErrUnavailable and the other sentinels, and against context.Canceled and
// context.DeadlineExceeded. This holds for the raw service clients too:
// the Client's connection converts every call's error.
//
// # Training jobs
//
// WatchJob is an iterator over a job's events (Go 1.23 range-over-func)
// that survives a lost connection or a restarted server: it calls again
// from the last event's sequence number, so the loop sees every event
// once.
//
// # Everything else
//
// Dataset, Trainer, Registry, Inference, OpenInference and Auth return the
// generated clients of github.com/shoalml/shoal/gen/..., on the same
// connection, token and error conversion.
package client
