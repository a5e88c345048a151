package overload

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryAfter(t *testing.T) {
	err := Errorf(1500*time.Millisecond, "queue of %q is full", "fish")
	if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != `queue of "fish" is full` {
		t.Errorf("Errorf() = %v; want RESOURCE_EXHAUSTED with the message", err)
	}
	if d, ok := RetryAfter(err); !ok || d != 1500*time.Millisecond || Seconds(d) != 2 {
		t.Errorf("RetryAfter(Errorf(1.5s)) = %v, %v (Seconds %d); want 1.5s, true, 2", d, ok, Seconds(d))
	}
	if d, ok := RetryAfter(Errorf(0, "busy")); !ok || d != time.Second {
		t.Errorf("RetryAfter(Errorf(0)) = %v, %v; want at least a second", d, ok)
	}
	for _, e := range []error{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5 vs. 4)"), errors.New("plain"), nil} {
		if _, ok := RetryAfter(e); ok {
			t.Errorf("RetryAfter(%v) = true; want false: nothing asks to retry", e)
		}
	}
}
