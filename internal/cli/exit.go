package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/overload"
)

// Exit codes, by class of failure. The gRPC status of a failed call picks
// the class, so a script can tell "not there" from "not reachable" without
// reading messages. The table is printed by `shoal --help` and written in
// the README.
const (
	ExitOK          = 0 // success
	ExitError       = 1 // any other error
	ExitUsage       = 2 // unknown command, bad flag or argument, confirmation refused
	ExitNotFound    = 3 // NOT_FOUND
	ExitPermission  = 4 // PERMISSION_DENIED, UNAUTHENTICATED
	ExitUnavailable = 5 // UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED of an overload: retrying may help
	ExitJobFailed   = 6 // a followed training job ended FAILED or CANCELLED
	ExitInvalid     = 7 // INVALID_ARGUMENT, OUT_OF_RANGE, RESOURCE_EXHAUSTED of a size limit: the request's values were refused
	ExitConflict    = 8 // ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED: the current state forbids it
)

const exitCodesHelp = `Exit codes:
  0  success
  1  any other error
  2  usage: unknown command, bad flag or argument, a delete refused without --yes
  3  not found
  4  permission denied or unauthenticated
  5  unavailable: server unreachable or overloaded, or the time bound passed (retrying may help)
  6  job failed: a followed training job ended FAILED or CANCELLED
  7  invalid: the server refused the request's values (INVALID_ARGUMENT, OUT_OF_RANGE, or over a size limit)
  8  conflict: it already exists, or the current state forbids it (ALREADY_EXISTS, FAILED_PRECONDITION);
     promote --wait: an inference replica failed to load the version`

// ExitCode is the process exit code for err, the result of Run.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var u *usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	var j *jobEndedError
	if errors.As(err, &j) {
		return ExitJobFailed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ExitUnavailable
	}
	st, ok := status.FromError(err)
	if !ok {
		return ExitError
	}
	switch st.Code() {
	case codes.NotFound:
		return ExitNotFound
	case codes.PermissionDenied, codes.Unauthenticated:
		return ExitPermission
	case codes.Unavailable, codes.DeadlineExceeded:
		return ExitUnavailable
	case codes.ResourceExhausted:
		// Overloaded (retry) or over a limit (do not): package overload.
		if _, retry := overload.RetryAfter(err); retry {
			return ExitUnavailable
		}
		return ExitInvalid
	case codes.InvalidArgument, codes.OutOfRange:
		return ExitInvalid
	case codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted:
		return ExitConflict
	}
	return ExitError
}

// usageError is a command line the program cannot run as written; it exits
// with ExitUsage and prints the command's usage, unless it is a refusal (a
// delete without confirmation), whose message says all there is to say.
type usageError struct {
	msg     string
	refusal bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// UsageError marks err as a usage error: printed with the command's usage,
// exit code ExitUsage. Commands that parse their own flags (serve) use it.
func UsageError(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{msg: err.Error()}
}

// jobEndedError is a followed job that did not succeed.
type jobEndedError struct {
	id, state, reason string
}

func (e *jobEndedError) Error() string {
	msg := fmt.Sprintf("job %s %s", e.id, strings.ToLower(e.state))
	if e.reason != "" {
		msg += ": " + e.reason
	}
	return msg
}

// rpcError is a call the server (or the connection) failed. It prints the
// status message, not gRPC's "rpc error: code = ... desc = ...", says what
// to check when the server could not be reached, and keeps the status for
// ExitCode and for callers that check the code.
type rpcError struct {
	st      *status.Status
	addr    string
	timeout time.Duration
}

func (e *rpcError) GRPCStatus() *status.Status { return e.st }

func (e *rpcError) Error() string {
	msg := e.st.Message()
	switch e.st.Code() {
	case codes.Unavailable:
		// The dial error is nested in gRPC's transport wording; the
		// operating system's reason at its end is what a person acts on.
		if i := strings.Index(msg, "Error while dialing: "); i >= 0 {
			reason := strings.TrimSuffix(msg[i+len("Error while dialing: "):], `"`)
			return fmt.Sprintf("cannot reach a Shoal server at %s (set --addr or SHOAL_ADDR): %s", e.addr, reason)
		}
	case codes.DeadlineExceeded:
		if msg == context.DeadlineExceeded.Error() && e.timeout > 0 {
			return fmt.Sprintf("no answer within %s (--timeout)", e.timeout)
		}
	}
	if msg == "" {
		return e.st.Code().String()
	}
	return msg
}
