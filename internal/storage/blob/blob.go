// Package blob stores opaque content by key, on a local filesystem or in an
// S3-compatible bucket, behind one narrow interface.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNotFound means no object is stored under the key.
	ErrNotFound = errors.New("blob: not found")
	// ErrInvalidKey means the key (or list prefix) is malformed; see ValidateKey.
	ErrInvalidKey = errors.New("blob: invalid key")
	// ErrSizeMismatch means Put was given a size that the reader did not match.
	ErrSizeMismatch = errors.New("blob: size mismatch")
)

// MaxKeyLen is S3's limit on object names, applied to every backend so that a
// key accepted by one is accepted by all.
const MaxKeyLen = 1024

// Store is content stored by key. Keys are slash-separated relative paths (see
// ValidateKey). Implementations are safe for concurrent use.
type Store interface {
	// Put stores the content of r under key, replacing any previous object.
	// size is the exact number of bytes r yields, or -1 if unknown. Put is
	// atomic: if r fails, yields a different size, or ctx ends, the previous
	// object (or its absence) is left as it was.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object for reading; it fails with ErrNotFound if missing.
	// The reader yields one whole version of the object, even if the key is
	// overwritten meanwhile. Reading may fail once ctx is done; the caller
	// must close the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object; it fails with ErrNotFound if missing.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object. Deleting a missing key succeeds.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in
	// ascending byte order of key, streaming rather than collecting. prefix
	// is a plain string prefix ("a/b" matches "a/b/c" and "a/bc"). An error
	// from fn stops the listing and is returned as is.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Ping reports whether the store is usable, for readiness checks.
	Ping(ctx context.Context) error
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// ValidateKey reports whether key is a usable object key: a non-empty,
// slash-separated relative path of valid UTF-8, at most MaxKeyLen bytes, with
// no empty, "." or ".." segments and no backslash or NUL. These rules keep
// keys portable between backends and make them safe as filesystem paths.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validateSegment(seg); err != nil {
			return fmt.Errorf("%w %q: %w", ErrInvalidKey, key, err)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: every complete segment (up to the last
// slash) must be valid as in ValidateKey; the trailing partial segment only
// needs valid characters, since it is matched as a string, never opened as a
// path. The empty prefix lists everything.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLen {
		return fmt.Errorf("%w: prefix of %d bytes, more than %d", ErrInvalidKey, len(prefix), MaxKeyLen)
	}
	dir, partial := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, partial = prefix[:i], prefix[i+1:]
		if err := ValidateKey(dir); err != nil {
			return fmt.Errorf("prefix %q: %w", prefix, err)
		}
	}
	if err := validateChars(partial); err != nil {
		return fmt.Errorf("%w: prefix %q: %w", ErrInvalidKey, prefix, err)
	}
	return nil
}

func validateSegment(seg string) error {
	switch seg {
	case "":
		return errors.New("empty path segment (leading, trailing or double slash)")
	case ".", "..":
		return fmt.Errorf("%q path segment", seg)
	}
	return validateChars(seg)
}

func validateChars(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.ContainsRune(s, '\\') {
		return errors.New("contains a backslash")
	}
	if strings.ContainsRune(s, 0) {
		return errors.New("contains a NUL byte")
	}
	return nil
}

// exactReader passes through exactly n bytes of r and fails with
// ErrSizeMismatch if r is shorter or longer. The excess check happens inside
// the Read that delivers the last byte, because consumers such as io.ReadFull
// stop calling Read once they have the bytes they asked for.
type exactReader struct {
	r    io.Reader
	left int64
	want int64
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, left: size, want: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		if err := e.checkEOF(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0:
		if err := e.checkEOF(); err != nil {
			// Report no bytes so that the consumer cannot treat the object
			// as complete and drop the error.
			return 0, err
		}
		return n, nil
	case err == io.EOF:
		return n, fmt.Errorf("%w: reader ended after %d of %d bytes", ErrSizeMismatch, e.want-e.left, e.want)
	}
	return n, err
}

// checkEOF reads past the expected end; it returns nil if nothing is left.
func (e *exactReader) checkEOF() error {
	var b [1]byte
	for {
		n, err := e.r.Read(b[:])
		if n > 0 {
			return fmt.Errorf("%w: reader has more than %d bytes", ErrSizeMismatch, e.want)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ctxReader fails reads once ctx is done, so that a long copy from a slow or
// endless reader stops when the caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
