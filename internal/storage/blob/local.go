package blob

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/shoalml/shoal/internal/scratch"
)

// localTempDir is where Put stages new objects before renaming them into
// place. It sits inside the root so that the rename stays on one filesystem
// (and so atomic), and it is reserved: no key may start with it.
const localTempDir = ".shoal-tmp"

// Local is a Store on a local filesystem directory. Each key is a file at the
// same relative path under the root.
//
// Limitation of any filesystem: "a" and "a/b" cannot both exist, so putting
// one while the other exists fails.
type Local struct {
	root string
	// staging is the staging folder, held while the store lives so that
	// no other store removes what this one stages (see scratch.Claim).
	staging *os.File
}

var _ Store = (*Local)(nil)

// NewLocal returns a Store rooted at dir, creating it if needed.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("blob: local: empty directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: local: %w", err)
	}
	tmp := filepath.Join(root, localTempDir)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("blob: local: %w", err)
	}
	staging, _ := scratch.Claim(tmp, func(string) bool { return true }, staleTempAge)
	return &Local{root: root, staging: staging}, nil
}

// staleTempAge is how old a staged file must be for NewLocal to take it for
// the leftover of a crashed Put while another store uses the folder (when
// none does, all are; see scratch.Claim); no upload should take this long.
const staleTempAge = 24 * time.Hour

// path maps a key to its file, rejecting invalid and reserved keys.
func (l *Local) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if key == localTempDir || strings.HasPrefix(key, localTempDir+"/") {
		return "", fmt.Errorf("%w %q: %q is reserved by the local backend", ErrInvalidKey, key, localTempDir)
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file, syncs it and renames it over the target, so
// readers see the old object or the whole new one, never a partial one.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	dst, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	if size >= 0 {
		r = newExactReader(r, size)
	}
	tmp, err := os.CreateTemp(filepath.Join(l.root, localTempDir), "put-*")
	if err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	if err := renameInto(tmp.Name(), dst); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	// Make the rename itself durable.
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, markFull(err))
	}
	return nil
}

// renameInto renames src to dst, creating dst's parents. It retries because a
// concurrent Delete may remove a parent that has just become empty between
// MkdirAll and Rename.
func renameInto(src, dst string) error {
	var err error
	for range 5 {
		if err = os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		if err = os.Rename(src, dst); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get opens the object's file. The open file keeps its content readable even
// if the object is replaced or deleted meanwhile.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: get %q: %w", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("blob: get %q: %w", key, mapNotExist(err))
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("blob: get %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		// A directory is only a key prefix, not an object.
		_ = f.Close()
		return nil, fmt.Errorf("blob: get %q: %w", key, ErrNotFound)
	}
	return f, nil
}

// Stat describes the object's file.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	p, err := l.path(key)
	if err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, mapNotExist(err))
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, ErrNotFound)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object's file and then any parent directories it leaves
// empty, so that deleted prefixes do not slow down List forever.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return nil
	case err != nil:
		return fmt.Errorf("blob: delete %q: %w", key, err)
	case fi.IsDir():
		return nil // a prefix of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		// Fails (and stops) at the first directory that is not empty.
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List walks the directories under the prefix in key order. Directory entries
// sort as name+"/" so that, for example, "a.b" comes before "a/b" as it does
// in S3; this needs one directory's entries in memory at a time.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	if strings.HasPrefix(prefix, localTempDir+"/") {
		return nil // reserved: no key lives there
	}
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i+1]
	}
	return l.walk(ctx, dir, prefix, fn)
}

// walk lists keys under the directory dir ("" or ending in "/") that start
// with prefix.
func (l *Local) walk(ctx context.Context, dir, prefix string, fn func(Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: list %q: %w", prefix, err)
	}
	entries, err := os.ReadDir(filepath.Join(l.root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		// No such directory, or it was deleted meanwhile: no keys here.
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: list %q: %w", prefix, err)
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return cmp.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		key := dir + e.Name()
		if dir == "" && e.Name() == localTempDir {
			continue
		}
		switch {
		case e.IsDir():
			sub := key + "/"
			// Descend only where keys can match: the prefix is inside this
			// directory, or this directory is inside the prefix.
			if strings.HasPrefix(prefix, sub) || strings.HasPrefix(sub, prefix) {
				if err := l.walk(ctx, sub, prefix, fn); err != nil {
					return err
				}
			}
		case e.Type().IsRegular() && strings.HasPrefix(key, prefix):
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				return fmt.Errorf("blob: list %q: %w", prefix, err)
			}
			if err := fn(Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ping checks that the root is still a writable directory.
func (l *Local) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: ping: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(l.root, localTempDir), "ping-*")
	if err != nil {
		return fmt.Errorf("blob: ping %s: %w", l.root, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("blob: ping %s: %w", l.root, err)
	}
	return nil
}

func mapNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrNotFound
	}
	return err
}
