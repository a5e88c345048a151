// Package storage says what a failure of Shoal's storage means to a
// client, whichever driver raised it: the database or the blob store
// cannot be reached (UNAVAILABLE: try again shortly) or a disk is full
// (RESOURCE_EXHAUSTED: free space first). The interceptors apply it to
// every RPC's error, so each store wraps its errors with %w and needs no
// mapping of its own.
package storage

import (
	"errors"
	"syscall"

	"google.golang.org/grpc/codes"

	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Failure is a storage failure a client can act on.
type Failure struct {
	Code codes.Code
	What string // what failed: "the database is unavailable"
	Hint string // what to do: "try again shortly"
}

// Message is the failure as a client reads it; it names the store and the
// remedy, never a driver's text.
func (f Failure) Message() string { return f.What + "; " + f.Hint }

const (
	retry     = "try again shortly"
	freeSpace = "free space on the server, then try again"
)

// Classify returns the failure err is, when it is a storage failure of a
// kind the client can act on.
func Classify(err error) (Failure, bool) {
	switch {
	case err == nil:
		return Failure{}, false
	case db.IsDiskFull(err):
		return Failure{codes.ResourceExhausted, "the database's disk is full", freeSpace}, true
	case blob.IsDiskFull(err):
		return Failure{codes.ResourceExhausted, "the blob store's disk is full", freeSpace}, true
	case IsDiskFull(err):
		return Failure{codes.ResourceExhausted, "the server's disk is full", freeSpace}, true
	case db.IsUnavailable(err):
		return Failure{codes.Unavailable, "the database is unavailable", retry}, true
	case blob.IsUnavailable(err):
		return Failure{codes.Unavailable, "the blob store is unavailable", retry}, true
	}
	return Failure{}, false
}

// Transient reports a storage failure that may go away by itself, after
// which the same work succeeds: the database or blob store was
// unreachable.
func Transient(err error) bool {
	return err != nil && (db.IsUnavailable(err) || blob.IsUnavailable(err))
}

// IsDiskFull reports a write of any file refused for lack of space.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
