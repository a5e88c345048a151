// Package overload tells the two kinds of RESOURCE_EXHAUSTED apart. gRPC
// uses the one code both for "too busy now" (a full queue, a rate limit, a
// full disk) and for "too large, ever" (a message, an archive or a model
// over a configured limit, which grpc-go itself answers too). A client
// should retry the first and not the second, so the first carries the
// standard google.rpc.RetryInfo detail with when to retry: REST answers it
// 429 with Retry-After, and the rest 413; the CLI exits "unavailable" for
// the first and "invalid" for the second.
package overload

import (
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Errorf is a RESOURCE_EXHAUSTED status that asks the client to retry after
// the given time (at least a second).
func Errorf(after time.Duration, format string, args ...any) error {
	st := status.New(codes.ResourceExhausted, fmt.Sprintf(format, args...))
	withRetry, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(max(after, time.Second))})
	if err != nil {
		return st.Err()
	}
	return withRetry.Err()
}

// RetryAfter reports whether err is a status that asks the client to retry,
// and after how long.
func RetryAfter(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			return r.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// Seconds is a Retry-After header's value for d: whole seconds, at least 1.
func Seconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }
