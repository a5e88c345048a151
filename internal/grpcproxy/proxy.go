// Package grpcproxy is a transparent gRPC proxy: calls of services this
// process does not serve are passed, message by message and without being
// decoded, to the process that serves them. The gateway of a split
// deployment uses it so that its one gRPC address serves every Shoal
// service, as a single `shoal serve` does.
//
// Calls of every shape pass (unary, client, server and bidirectional
// streams). What the caller sent goes along: its metadata (the
// authorization token and the W3C trace context among it; a connection
// with a tracing stats handler replaces the latter with its own call's),
// its deadline and its cancellation; what
// the owner answers comes back: headers, messages, trailers and the status
// with its details.
//
//	p := grpcproxy.New(func(service string) *grpc.ClientConn { return conns[service] })
//	s := grpc.NewServer(p.ServerOptions()...)
package grpcproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Route returns the connection to the process that serves a gRPC service
// (its full name, "shoal.dataset.v1.DatasetService"), or nil when no
// process does.
type Route func(service string) *grpc.ClientConn

// Proxy forwards the calls of the services Route knows.
type Proxy struct {
	route Route
	// requestID, if set, returns the call's request id (given by the
	// server's interceptors), sent to the owner under requestIDKey.
	requestID    func(context.Context) string
	requestIDKey string
	callOptions  []grpc.CallOption
	dropped      map[string]bool
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithRequestID forwards the call's request id, as returned by id, under
// the metadata key: the owner logs the call under the id the proxy's
// interceptors gave it (and answers it, which the proxy then drops as a
// duplicate of its own).
func WithRequestID(key string, id func(context.Context) string) Option {
	return func(p *Proxy) { p.requestIDKey, p.requestID = key, id }
}

// WithoutHeaders drops these metadata keys of the caller's: those the
// proxy's connections set themselves (a proof of being the deployment's
// own proxy, which a caller must not add to).
func WithoutHeaders(keys ...string) Option {
	return func(p *Proxy) {
		for _, k := range keys {
			p.dropped[strings.ToLower(k)] = true
		}
	}
}

// WithCallOptions adds options to every forwarded call.
func WithCallOptions(opts ...grpc.CallOption) Option {
	return func(p *Proxy) { p.callOptions = append(p.callOptions, opts...) }
}

// New returns a proxy that forwards to the connections route names.
func New(route Route, opts ...Option) *Proxy {
	p := &Proxy{route: route, dropped: map[string]bool{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// ServerOptions make a server forward the calls of services it does not
// serve itself: the proxy's handler for unknown services, and a codec that
// passes their messages through undecoded while the server's own services
// decode theirs as protobuf as usual.
func (p *Proxy) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.UnknownServiceHandler(p.handle), grpc.ForceServerCodecV2(Codec)}
}

// Codec passes a *Frame through as the bytes it holds and leaves every
// other message to protobuf.
var Codec encoding.CodecV2 = codec{}

// Frame is one message in its encoded form.
type Frame struct{ data mem.BufferSlice }

type codec struct{}

func (codec) Name() string { return proto.Name }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*Frame); ok {
		// gRPC frees what Marshal returns once it is written: the frame
		// hands over the reference it took in Unmarshal.
		out := f.data
		f.data = nil
		return out, nil
	}
	return encoding.GetCodecV2(proto.Name).Marshal(v)
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*Frame); ok {
		// gRPC frees data when Unmarshal returns; the frame keeps it
		// until it is sent on.
		data.Ref()
		f.data = data
		return nil
	}
	return encoding.GetCodecV2(proto.Name).Unmarshal(data, v)
}

func (f *Frame) free() {
	if f.data != nil {
		f.data.Free()
		f.data = nil
	}
}

// passthrough describes a forwarded call: whatever the method's real
// shape, both sides stream until the other ends, which carries unary
// calls unchanged.
var passthrough = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// handle forwards one call.
func (p *Proxy) handle(_ any, in grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(in)
	if !ok {
		return status.Error(codes.Internal, "grpcproxy: the call has no method")
	}
	service := serviceOf(method)
	conn := p.route(service)
	if conn == nil {
		return status.Errorf(codes.Unimplemented, "unknown service %s", service)
	}
	ctx, cancel := context.WithCancel(in.Context())
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, p.outgoing(in.Context()))
	opts := append([]grpc.CallOption{grpc.ForceCodecV2(Codec)}, p.callOptions...)
	out, err := conn.NewStream(ctx, passthrough, method, opts...)
	if err != nil {
		return err
	}

	toOwner := make(chan error, 1)
	go func() { toOwner <- forwardRequests(in, out) }()
	var ownerErr error
	ownerDone := make(chan struct{})
	go func() { ownerErr = p.forwardResponses(out, in); close(ownerDone) }()
	for {
		select {
		case err := <-toOwner:
			if errors.Is(err, io.EOF) {
				// The caller sent all it had; the answer may go on.
				toOwner = nil
				continue
			}
			// The caller's side failed (it went away): end the call
			// at the owner too; its side then ends with the
			// cancellation, which is not news.
			cancel()
			<-ownerDone
			return err
		case <-ownerDone:
			in.SetTrailer(out.Trailer())
			if errors.Is(ownerErr, io.EOF) {
				return nil
			}
			return ownerErr
		}
	}
}

// forwardRequests sends the caller's messages on until the caller is done
// (io.EOF, after which the owner is told so) or a side fails.
func forwardRequests(in grpc.ServerStream, out grpc.ClientStream) error {
	for {
		f := &Frame{}
		if err := in.RecvMsg(f); err != nil {
			if errors.Is(err, io.EOF) {
				if cerr := out.CloseSend(); cerr != nil {
					return cerr
				}
			}
			return err
		}
		if err := out.SendMsg(f); err != nil {
			f.free()
			// The owner ended the call; its status reaches the caller
			// through forwardResponses.
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
	}
}

// forwardResponses sends the owner's headers as soon as they come (a
// watch may send them long before its first message), then its messages,
// until the owner ends the call (io.EOF on success, else its status).
func (p *Proxy) forwardResponses(out grpc.ClientStream, in grpc.ServerStream) error {
	// Also when the call ends without a message, the owner's headers
	// (retry-after with a refusal) are the caller's to read.
	if md, err := out.Header(); err == nil && len(md) > 0 {
		if err := in.SendHeader(p.answered(md)); err != nil {
			return err
		}
	}
	for {
		f := &Frame{}
		if err := out.RecvMsg(f); err != nil {
			return err
		}
		if err := in.SendMsg(f); err != nil {
			f.free()
			return err
		}
	}
}

// hopHeaders are metadata keys that belong to one connection, or that the
// proxy sets itself, and are never forwarded.
var hopHeaders = map[string]bool{
	"content-type": true, "user-agent": true, "te": true, "connection": true, "host": true,
	"keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true,
}

func forwardable(k string) bool {
	return !strings.HasPrefix(k, ":") && !strings.HasPrefix(k, "grpc-") && !hopHeaders[k]
}

// outgoing is the metadata of the forwarded call: the caller's, less the
// connection's own, with the caller's address appended to x-forwarded-for
// (the owner trusts it only from a proxy that proves itself with the
// connection's own credentials) and the call's request id.
func (p *Proxy) outgoing(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range md {
		if forwardable(k) && !p.dropped[k] && k != "x-forwarded-for" && k != p.requestIDKey {
			out[k] = v
		}
	}
	fwd := strings.Join(md.Get("x-forwarded-for"), ", ")
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		host := pr.Addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if fwd != "" {
			fwd += ", "
		}
		fwd += host
	}
	if fwd != "" {
		out.Set("x-forwarded-for", fwd)
	}
	if p.requestID != nil {
		if id := p.requestID(ctx); id != "" {
			out.Set(p.requestIDKey, id)
		} else if v := md.Get(p.requestIDKey); len(v) > 0 {
			out[p.requestIDKey] = v
		}
	}
	return out
}

// answered is the owner's header metadata as the caller gets it: the
// request id the proxy's interceptors already sent is not sent twice.
func (p *Proxy) answered(md metadata.MD) metadata.MD {
	out := metadata.MD{}
	for k, v := range md {
		if forwardable(k) && (p.requestIDKey == "" || k != p.requestIDKey) {
			out[k] = v
		}
	}
	return out
}

// serviceOf returns the service of a full method name ("/pkg.Service/M").
func serviceOf(method string) string {
	method = strings.TrimPrefix(method, "/")
	if i := strings.LastIndexByte(method, '/'); i >= 0 {
		return method[:i]
	}
	return method
}
