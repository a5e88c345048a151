package blob

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// IsUnavailable reports a blob store that cannot be reached or is not
// taking work right now: an S3 request failed on the network (refused,
// reset, timed out) or the server answered that it is unavailable or
// overloaded, or the local disk failed to read or write. Trying again
// later is the remedy, so clients see UNAVAILABLE.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		u    *url.Error
		op   *net.OpError
		resp minio.ErrorResponse
	)
	switch {
	case errors.As(err, &u), errors.As(err, &op):
		return true
	case errors.As(err, &resp):
		switch resp.StatusCode {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true
		}
		switch resp.Code {
		case "SlowDown", "ServiceUnavailable", "XMinioServerNotInitialized", "RequestTimeout":
			return true
		}
	case errors.Is(err, syscall.EIO):
		return true
	}
	return false
}

// ErrFull marks a write the store refused for lack of disk space or
// quota; test for it with IsDiskFull.
var ErrFull = errors.New("blob: no space left")

// IsDiskFull reports a write the store refused for lack of space.
func IsDiskFull(err error) bool { return errors.Is(err, ErrFull) }

// markFull adds ErrFull to the chain of an error that says the disk or
// the S3 server is out of space.
func markFull(err error) error {
	var resp minio.ErrorResponse
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT),
		errors.As(err, &resp) && (resp.Code == "XMinioStorageFull" || resp.StatusCode == http.StatusInsufficientStorage):
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}
