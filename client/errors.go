package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Error is a failed call: the gRPC status the server (or the connection)
// answered. Every call through a Client fails with an *Error, the raw
// service clients' calls included, unless the failure is local (a file
// that cannot be read). Match its kind with errors.Is and the sentinels
// below, or read Code; status.Code and status.FromError work on it too.
type Error struct {
	// Method is the RPC, e.g. "/shoal.inference.v1.InferenceService/Predict";
	// empty for a check the SDK made before calling.
	Method string
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the server's explanation.
	Message string
	// RetryAfter is how long the server asked the caller to wait before
	// trying again (a rate limit's ResourceExhausted); 0 when it did not
	// say.
	RetryAfter time.Duration

	st *status.Status
}

func (e *Error) Error() string {
	if e.Method == "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Method[strings.LastIndex(e.Method, "/")+1:], e.Code, e.Message)
}

// GRPCStatus is the status, with its details, as gRPC's status package
// reads it.
func (e *Error) GRPCStatus() *status.Status {
	if e.st == nil {
		return status.New(e.Code, e.Message)
	}
	return e.st
}

// Is matches the sentinel of e's code, and context.Canceled and
// context.DeadlineExceeded for Canceled and DeadlineExceeded.
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	k, ok := target.(kind)
	return ok && k.code == e.Code
}

// kind is a sentinel: one gRPC code.
type kind struct {
	code codes.Code
	text string
}

func (k kind) Error() string { return "shoal: " + k.text }

// Sentinels, one per status code a caller usually handles; errors.Is(err,
// ErrNotFound) holds when err is an *Error of code NotFound.
var (
	// ErrInvalidArgument: the request's values were refused (an image that
	// does not decode, a bad spec); the message says which.
	ErrInvalidArgument error = kind{codes.InvalidArgument, "invalid argument"}
	// ErrNotFound: the dataset, model, version, alias or job does not
	// exist.
	ErrNotFound error = kind{codes.NotFound, "not found"}
	// ErrAlreadyExists: a dataset or model of that name exists.
	ErrAlreadyExists error = kind{codes.AlreadyExists, "already exists"}
	// ErrPermissionDenied: the token lacks the call's scope.
	ErrPermissionDenied error = kind{codes.PermissionDenied, "permission denied"}
	// ErrUnauthenticated: the call needs a token (it had none, or one
	// that is unknown, revoked or expired).
	ErrUnauthenticated error = kind{codes.Unauthenticated, "unauthenticated"}
	// ErrFailedPrecondition: the current state forbids the call (a job
	// that already ended, a version that cannot be served).
	ErrFailedPrecondition error = kind{codes.FailedPrecondition, "failed precondition"}
	// ErrResourceExhausted: a rate limit or a full queue; Error.RetryAfter
	// may say when to try again.
	ErrResourceExhausted error = kind{codes.ResourceExhausted, "resource exhausted"}
	// ErrUnavailable: the server cannot be reached, is shutting down or is
	// not ready; retrying later may succeed.
	ErrUnavailable error = kind{codes.Unavailable, "unavailable"}
)

// toError makes a call's failure an *Error; io.EOF (a stream's end), nil,
// local errors and errors that already are one pass unchanged. md holds the
// call's header and trailer metadata, where a rate limit says retry-after.
func toError(method string, err error, md ...metadata.MD) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Method: method, Code: st.Code(), Message: st.Message(), st: st}
	for _, m := range md {
		if v := m.Get("retry-after"); len(v) > 0 {
			if secs, err := strconv.Atoi(v[0]); err == nil && secs > 0 {
				e.RetryAfter = time.Duration(secs) * time.Second
			}
		}
	}
	return e
}

func unaryErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var header, trailer metadata.MD
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&header), grpc.Trailer(&trailer))...)
	return toError(method, err, header, trailer)
}

func streamErrors(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, toError(method, err)
	}
	return &errorStream{ClientStream: s, method: method}, nil
}

// errorStream is a client stream whose failures are *Error.
type errorStream struct {
	grpc.ClientStream
	method string
}

func (s *errorStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	return md, toError(s.method, err)
}

func (s *errorStream) CloseSend() error { return toError(s.method, s.ClientStream.CloseSend()) }

func (s *errorStream) SendMsg(m any) error { return toError(s.method, s.ClientStream.SendMsg(m)) }

func (s *errorStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return toError(s.method, err, s.ClientStream.Trailer())
}
