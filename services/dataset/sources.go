package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// openLocal opens a server folder inside one of the import roots.
func (s *Service) openLocal(p string) (*os.Root, error) {
	if len(s.roots) == 0 {
		return nil, status.Error(codes.PermissionDenied, "importing server folders is disabled (dataset.import-roots is empty); use UploadImages")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "local.path %q is not a usable path", p)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && s.inRoots(abs) {
			return nil, status.Errorf(codes.NotFound, "folder %q does not exist", p)
		}
		if s.inRoots(abs) {
			return nil, status.Errorf(codes.FailedPrecondition, "folder %q cannot be read", p)
		}
	}
	if err != nil || !s.inRoots(real) {
		return nil, status.Errorf(codes.PermissionDenied, "folder %q is outside the folders this server imports from (its dataset.import-roots setting)", p)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.IsDir() {
		return nil, status.Errorf(codes.InvalidArgument, "%q is not a folder", p)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "folder %q cannot be read", p)
	}
	return root, nil
}

// inRoots reports whether p is one of the import roots or inside one.
func (s *Service) inRoots(p string) bool {
	for _, r := range s.roots {
		if rel, err := filepath.Rel(r, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// openObjectStore opens a bucket prefix as a source, through the object
// store the service was given (S3 deployments only).
func (s *Service) openObjectStore(ctx context.Context, src *datasetpb.ObjectStoreSource) (source, error) {
	if s.deps.ObjectStore == nil {
		return nil, status.Error(codes.FailedPrecondition, "object-store imports need the S3 blob backend (blob.backend=s3)")
	}
	if err := s3utils.CheckValidBucketNameStrict(src.GetBucket()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "objectStore.bucket %q is not a valid bucket name", src.GetBucket())
	}
	prefix := strings.Trim(src.GetPrefix(), "/")
	if prefix != "" {
		if err := blob.ValidateKey(prefix); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "objectStore.prefix %q is not a valid key prefix", src.GetPrefix())
		}
	}
	where := src.GetBucket() + "/" + prefix
	st, err := s.deps.ObjectStore(ctx, src.GetBucket(), prefix)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", where, err)
	}
	return objectSource{store: st, where: where}, nil
}

// localSource is a folder on the server, read through os.Root so that no
// path (symlinks included) can lead outside it.
type localSource struct {
	root *os.Root
}

func (l localSource) walk(ctx context.Context, emit func(entry) error, reject func(string, string) error) error {
	top, err := l.readDir(".")
	if err != nil {
		return fmt.Errorf("read import root: %w", err)
	}
	emitted := 0
	counted := func(e entry) error { emitted++; return emit(e) }
	var found []string
	for _, d := range top {
		name := d.Name()
		if d.IsDir() {
			name += "/"
		}
		if !strings.HasPrefix(name, ".") {
			found = append(found, name)
		}
		if strings.HasPrefix(name, ".") || !d.IsDir() {
			continue // README, NOTICE, .DS_Store: not part of the layout
		}
		if _, ok := splitDirs[d.Name()]; !ok {
			if err := reject(name, unknownSplit); err != nil {
				return err
			}
			continue
		}
		if err := l.walkSplit(ctx, d.Name(), counted, reject); err != nil {
			return err
		}
	}
	if emitted == 0 {
		return nothingToImport("the folder", found)
	}
	return nil
}

// nothingToImport is the answer to a tree that holds no file where the
// layout wants one: what it holds, and what the layout is.
func nothingToImport(what string, found []string) error {
	holds := "it is empty"
	if len(found) > 0 {
		holds = "it holds " + strings.Join(found[:min(len(found), 5)], ", ")
		if more := len(found) - 5; more > 0 {
			holds += fmt.Sprintf(" and %d more", more)
		}
	}
	return status.Errorf(codes.InvalidArgument, "%s holds no files laid out split/Label/file (%s): expected train/, "+
		"validation/ or test/ folders holding one folder per label, e.g. train/Cat/1.jpg", what, holds)
}

func (l localSource) walkSplit(ctx context.Context, split string, emit func(entry) error, reject func(string, string) error) error {
	labels, err := l.readDir(split)
	if err != nil {
		return fmt.Errorf("read %s: %w", split, err)
	}
	for _, d := range labels {
		rel := split + "/" + d.Name()
		switch {
		case strings.HasPrefix(d.Name(), "."):
			continue
		case d.Type()&fs.ModeSymlink != 0:
			if err := reject(rel+"/", l.symlinkReason(rel, true)); err != nil {
				return err
			}
			continue
		case !d.IsDir():
			if err := reject(rel, "file outside a label folder: expected split/Label/file"); err != nil {
				return err
			}
			continue
		}
		if r := checkLabel(d.Name()); r != "" {
			if err := reject(rel+"/", r); err != nil {
				return err
			}
			continue
		}
		if err := l.walkLabel(ctx, rel, emit, reject); err != nil {
			return err
		}
	}
	return nil
}

func (l localSource) walkLabel(ctx context.Context, dir string, emit func(entry) error, reject func(string, string) error) error {
	files, err := l.readDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	n := 0
	for _, d := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := dir + "/" + d.Name()
		e, ignore, reason := placeFile(rel)
		switch {
		case ignore:
			continue
		case reason != "":
		case d.Type()&fs.ModeSymlink != 0:
			reason = l.symlinkReason(rel, false)
		case d.IsDir():
			reason = "nested folder: expected split/Label/file"
			rel += "/"
		case !d.Type().IsRegular():
			reason = "not a regular file"
		}
		n++
		if reason != "" {
			if err := reject(rel, reason); err != nil {
				return err
			}
			continue
		}
		e.open = func(context.Context) (io.ReadCloser, error) { return l.root.Open(rel) }
		if info, err := d.Info(); err == nil {
			e.size = info.Size()
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	if n == 0 {
		return reject(dir+"/", "empty label folder")
	}
	return nil
}

// symlinkReason says why a symlink is refused, or "" for a link to a
// regular file inside the root, which is imported like the file itself.
func (l localSource) symlinkReason(rel string, wantDir bool) string {
	fi, err := l.root.Stat(rel)
	switch {
	case err != nil && strings.Contains(err.Error(), "path escapes from parent"):
		return "symlink leads outside the import root"
	case err != nil:
		return "broken symlink"
	case wantDir || fi.IsDir():
		return "symlinked folders are not followed"
	case !fi.Mode().IsRegular():
		return "not a regular file"
	}
	return ""
}

// readDir lists a folder in name order, so imports walk deterministically.
func (l localSource) readDir(rel string) ([]fs.DirEntry, error) {
	f, err := l.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// objectSource is a prefix of a bucket, listed and read through a
// blob.Store rooted at that prefix.
type objectSource struct {
	store blob.Store
	where string // bucket/prefix, for messages
}

func (o objectSource) walk(ctx context.Context, emit func(entry) error, reject func(string, string) error) error {
	n, emitted := 0, 0
	badSplit := map[string]bool{}
	var found []string // the prefix's top level, for the answer when nothing fits
	list := o.store.List
	if all, ok := o.store.(interface {
		ListAll(context.Context, string, func(blob.Info) error) error
	}); ok {
		// Keys another tool wrote that Shoal would not (a backslash,
		// say) are refused by name, not passed over.
		list = all.ListAll
	}
	err := list(ctx, "", func(info blob.Info) error {
		n++
		top, _, isDir := strings.Cut(info.Key, "/")
		if isDir {
			top += "/"
		}
		if !slices.Contains(found, top) {
			found = append(found, top)
		}
		e, ignore, reason := placeFile(info.Key)
		if strings.Contains(info.Key, "\\") && !ignore {
			reason = "its key holds a backslash, which Windows tools write for a folder separator: name it with / (train/Cat/1.jpg)"
		}
		switch {
		case ignore:
			return nil
		case reason == unknownSplit:
			dir, _, _ := strings.Cut(info.Key, "/")
			if badSplit[dir] {
				return nil
			}
			badSplit[dir] = true
			return reject(dir+"/", reason)
		case reason != "":
			return reject(info.Key, reason)
		}
		e.size = info.Size
		key := info.Key
		e.open = func(ctx context.Context) (io.ReadCloser, error) { return o.store.Get(ctx, key) }
		emitted++
		return emit(e)
	})
	if err != nil {
		if isNoSuchBucket(err) {
			return status.Errorf(codes.NotFound, "bucket of %s does not exist", o.where)
		}
		return fmt.Errorf("%w: list %s: %w", errStorage, o.where, err)
	}
	if n == 0 {
		return status.Errorf(codes.NotFound, "no objects under %s", o.where)
	}
	if emitted == 0 {
		return nothingToImport(o.where, found)
	}
	return nil
}
