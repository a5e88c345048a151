package dataset

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// An import is a pipeline with bounded queues, so memory stays flat however
// large the tree: one walker lists the source, `workers` goroutines read,
// validate and hash files on every core, and the caller's goroutine (the only
// one that talks to the client) commits batches: blobs first, then rows.
const (
	batchMaxImages  = 256
	batchMaxBytes   = 64 << 20
	progressEvery   = 250 * time.Millisecond
	queuePerWorker  = 4
	blobKeyPrefix   = "images/sha256/"
	maxLabelBytes   = 255
	maxFileNameSize = 1024
)

// blobKey is where the bytes with this SHA-256 live; the two-character
// fan-out keeps local directories small.
func blobKey(sha string) string { return blobKeyPrefix + sha[:2] + "/" + sha }

// entry is one file a source found, placed in the dataset's layout.
type entry struct {
	path  string // relative to the source's root, for messages
	split datasetpb.Split
	label string
	name  string
	size  int64                                            // -1 if unknown before reading
	data  []byte                                           // already read (archives read sequentially, uploads); used when open is nil
	open  func(ctx context.Context) (io.ReadCloser, error) // nil when data holds the bytes
}

// source is a tree of files to import.
type source interface {
	// walk calls emit for every candidate file and reject for every path it
	// refuses by itself (layout errors, unsafe paths). Both return an error
	// only when the import is over; walk then returns it.
	walk(ctx context.Context, emit func(entry) error, reject func(path, reason string) error) error
}

// result is a worker's verdict on one entry.
type result struct {
	e      entry
	reject string // non-empty: why the file was refused
	data   []byte
	sha    string
	info   imaging.Info
	err    error // storing the blob failed
}

// importEvents receives an import's events, always on the caller's goroutine.
type importEvents interface {
	progress(*datasetpb.ImportProgress) error
	rejection(*datasetpb.FileRejection) error
}

// errStorage marks a blob store failure, which the client sees as
// Unavailable: the import stopped cleanly and a re-run finishes it.
var errStorage = errors.New("blob store failed")

// runImport imports src into ds and returns the final counts.
func (s *Service) runImport(ctx context.Context, ds *datasetRow, src source, ev importEvents) (*datasetpb.ImportCounts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := s.cfg.workers()
	items := make(chan entry, workers*queuePerWorker)
	results := make(chan result, workers*queuePerWorker)
	var found atomic.Int64

	// Decoding is CPU-bound and runs one worker per core; storing blobs is
	// I/O-bound (an fsync or an S3 round trip each) and runs wider, so the
	// cores never wait for the disk.
	validated := make(chan result, workers*queuePerWorker)
	var decoders, all sync.WaitGroup
	var walkErr error // written before results closes, read after
	// Every goroutine recovers its own panics: a panic fails this import
	// (Internal, with the request id), never the process.
	guard := s.deps.Panics
	all.Go(func() {
		defer close(items)
		defer guard.Recover("import walker", func(err error) { walkErr = err })
		walkErr = src.walk(ctx, func(e entry) error {
			found.Add(1)
			select {
			case items <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, func(p, reason string) error {
			found.Add(1)
			select {
			case results <- rejected(p, reason):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	for range workers {
		decoders.Go(func() {
			for e := range items {
				var r result
				if err := guard.Call("import decoder", func() error { r = s.examine(ctx, e); return nil }); err != nil {
					r = result{e: e, err: err}
				}
				out := validated
				if r.reject != "" || r.err != nil {
					out = results
				}
				select {
				case out <- r:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	all.Go(func() { decoders.Wait(); close(validated) })
	for range s.putters() {
		all.Go(func() {
			for r := range validated {
				r.err = guard.Call("import putter", func() error { return s.storeBlob(ctx, r) })
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { all.Wait(); close(results) }()

	c := &committer{svc: s, ds: ds, ev: ev, counts: &datasetpb.ImportCounts{}}
	err := c.consume(ctx, results, &found)
	cancel()
	for range results { // wait for the walker, decoders and putters to stop
	}
	if err == nil && walkErr != nil && !errors.Is(walkErr, context.Canceled) {
		err = walkErr
	}
	return c.counts, err
}

// rejected is the result for a path a source refused by itself. The path
// goes back to the client in a protobuf string, which must be UTF-8; a
// refused name need not be.
func rejected(path, reason string) result {
	return result{e: entry{path: strings.ToValidUTF8(path, "\uFFFD")}, reject: reason}
}

// examine reads, validates and hashes one file.
func (s *Service) examine(ctx context.Context, e entry) result {
	// open, not data, says whether the bytes are still to be read: an empty
	// upload or archive member has nil data and no open.
	data := e.data
	if e.open != nil {
		if e.size > s.cfg.MaxImageBytes {
			return result{e: e, reject: fmt.Sprintf("%d bytes, more than the limit of %d", e.size, s.cfg.MaxImageBytes)}
		}
		rc, err := e.open(ctx)
		if err != nil {
			return result{e: e, reject: "cannot read: " + readReason(err)}
		}
		data, err = io.ReadAll(io.LimitReader(rc, s.cfg.MaxImageBytes+1))
		rc.Close()
		if err != nil {
			return result{e: e, reject: "cannot read: " + readReason(err)}
		}
	}
	info, err := imaging.Validate(data, s.limits())
	if err != nil {
		return result{e: e, reject: strings.TrimPrefix(err.Error(), imaging.ErrInvalid.Error()+": ")}
	}
	sum := sha256.Sum256(data)
	return result{e: e, data: data, sha: hex.EncodeToString(sum[:]), info: info}
}

// readReason keeps file-system and S3 detail out of messages while saying
// enough to act on.
func readReason(err error) string {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "import stopped"
	case strings.Contains(err.Error(), "path escapes from parent"):
		return "symlink leads outside the import root"
	case errors.Is(err, zip.ErrChecksum):
		return "the archive entry is corrupt: its checksum does not match its content"
	case errors.Is(err, zip.ErrAlgorithm):
		return "the archive entry is compressed with a method Shoal does not read: use deflate, zip's usual method"
	case errors.As(err, &corrupt), errors.Is(err, zip.ErrFormat):
		return "the archive entry is corrupt: its compressed data is damaged"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated: it ended before its size"
	case errors.Is(err, blob.ErrNotFound):
		return "not found: it was removed or renamed during the import"
	case errors.Is(err, blob.ErrInvalidKey):
		return "its key is one Shoal does not read (" + strings.TrimPrefix(err.Error(), blob.ErrInvalidKey.Error()+" ") + ")"
	}
	return "I/O error"
}

func (s *Service) limits() imaging.Limits {
	return imaging.Limits{MaxBytes: s.cfg.MaxImageBytes, MaxPixels: s.cfg.MaxImagePixels}
}

// committer turns results into rows; it runs on the caller's goroutine.
type committer struct {
	svc    *Service
	ds     *datasetRow
	ev     importEvents
	counts *datasetpb.ImportCounts

	batch      []result
	batchBytes int
	lastSeen   int64
	lastTick   time.Time
}

func (c *committer) consume(ctx context.Context, results <-chan result, found *atomic.Int64) error {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	c.lastTick = time.Now()
	for {
		select {
		case r, ok := <-results:
			if !ok {
				if err := c.flush(ctx); err != nil {
					return err
				}
				return c.ev.progress(c.progress(found.Load()))
			}
			if r.err != nil {
				return r.err
			}
			if r.reject != "" {
				c.counts.Seen++
				c.counts.Rejected++
				if err := c.ev.rejection(&datasetpb.FileRejection{Path: r.e.path, Reason: r.reject}); err != nil {
					return err
				}
				continue
			}
			c.batch = append(c.batch, r)
			c.batchBytes += len(r.data)
			if len(c.batch) >= batchMaxImages || c.batchBytes >= batchMaxBytes {
				if err := c.flush(ctx); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := c.flush(ctx); err != nil {
				return err
			}
			if err := c.ev.progress(c.progress(found.Load())); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *committer) progress(found int64) *datasetpb.ImportProgress {
	now := time.Now()
	rate := 0.0
	if dt := now.Sub(c.lastTick).Seconds(); dt > 0 {
		rate = float64(c.counts.Seen-c.lastSeen) / dt
	}
	c.lastSeen, c.lastTick = c.counts.Seen, now
	counts := proto.CloneOf(c.counts)
	return &datasetpb.ImportProgress{Counts: counts, Total: found, ImagesPerSecond: rate}
}

// flush commits the batch: duplicates and conflicts are decided against the
// rows already stored, and the new rows are inserted in one transaction.
// Every image's blob was stored before it reached the batch, so a crash
// leaves at worst blobs without rows, which the next import of the same
// files re-uses (the key is the content) and sweepOrphans removes
// otherwise; never rows without blobs.
func (c *committer) flush(ctx context.Context) error {
	if len(c.batch) == 0 {
		return nil
	}
	batch := c.batch
	c.batch, c.batchBytes = nil, 0
	shas := make([]string, len(batch))
	for i, r := range batch {
		shas[i] = r.sha
	}
	st := store{db: c.svc.deps.DB}
	have, err := st.existing(ctx, c.ds.ID, shas)
	if err != nil {
		return err
	}
	var fresh []result
	inBatch := map[string]imageRow{}
	for _, r := range batch {
		c.counts.Seen++
		prev, ok := have[r.sha]
		if !ok {
			prev, ok = inBatch[r.sha]
		}
		switch {
		case !ok:
			inBatch[r.sha] = imageRow{Split: int16(r.e.split), Label: r.e.label, FileName: r.e.name}
			fresh = append(fresh, r)
		case prev.Split == int16(r.e.split) && prev.Label == r.e.label:
			c.counts.Duplicates++
		default:
			c.counts.Conflicts++
			reason := fmt.Sprintf("conflict: the same image is already in the dataset as %s/%s", splitDir(datasetpb.Split(prev.Split)), prev.Label)
			if err := c.ev.rejection(&datasetpb.FileRejection{Path: r.e.path, Reason: reason}); err != nil {
				return err
			}
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	now := time.Now().UTC()
	rows := make([]imageRow, len(fresh))
	for i, r := range fresh {
		rows[i] = imageRow{
			DatasetID: c.ds.ID, Split: int16(r.e.split), Label: r.e.label, FileName: r.e.name,
			SHA256: r.sha, Width: int32(r.info.Width), Height: int32(r.info.Height),
			Format: string(r.info.Format), SizeBytes: int64(len(r.data)), CreatedAt: now,
		}
	}
	added, err := st.insertImages(ctx, c.ds.ID, rows)
	if err != nil {
		return err
	}
	c.counts.Added += added
	c.counts.Duplicates += int64(len(rows)) - added // inserted meanwhile by another import
	return nil
}

// putters is how many blobs are stored at once.
func (s *Service) putters() int { return max(16, 4*s.cfg.workers()) }

// storeBlob writes the image's blob unless it is already stored: a re-run,
// or the same bytes in another dataset. Put is atomic, so a blob that exists
// is whole.
func (s *Service) storeBlob(ctx context.Context, r result) error {
	key := blobKey(r.sha)
	if info, err := s.deps.Blobs.Stat(ctx, key); err == nil && info.Size == int64(len(r.data)) {
		return nil
	}
	if err := s.deps.Blobs.Put(ctx, key, bytes.NewReader(r.data), int64(len(r.data))); err != nil {
		return fmt.Errorf("%w: put %s: %w", errStorage, r.sha, err)
	}
	return nil
}

// Layout: ROOT/<split>/<Label>/<file>.

var splitDirs = map[string]datasetpb.Split{
	"train":      datasetpb.Split_SPLIT_TRAIN,
	"validation": datasetpb.Split_SPLIT_VALIDATION,
	"test":       datasetpb.Split_SPLIT_TEST,
}

func splitDir(s datasetpb.Split) string {
	switch s {
	case datasetpb.Split_SPLIT_TRAIN:
		return "train"
	case datasetpb.Split_SPLIT_VALIDATION:
		return "validation"
	case datasetpb.Split_SPLIT_TEST:
		return "test"
	}
	return "unspecified"
}

const unknownSplit = "unknown split folder: expected train, validation or test"

// checkLabel reports why s cannot be a label, or "".
func checkLabel(s string) string {
	switch {
	case s == "":
		return "empty label"
	case len(s) > maxLabelBytes:
		return fmt.Sprintf("label longer than %d bytes", maxLabelBytes)
	case !utf8.ValidString(s):
		return "label is not valid UTF-8"
	case strings.HasPrefix(s, "."):
		return "label starts with '.'"
	case strings.ContainsAny(s, "/\\"):
		return "label contains a slash"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "label contains a control character"
	}
	return ""
}

// checkFileName reports why s cannot be an image's file name (what its
// column holds), or "".
func checkFileName(s string) string {
	switch {
	case len(s) > maxFileNameSize:
		return "file name too long"
	case !utf8.ValidString(s):
		return "file name is not valid UTF-8"
	}
	return ""
}

// placeFile turns a slash-separated path relative to the root into an
// entry's split, label and name. ignore means the file is not part of the
// layout and is skipped silently: files at the top level (README, NOTICE),
// hidden files and whatever is in hidden folders (.DS_Store, .git/,
// .ipynb_checkpoints/, as a server folder's walk skips them) and the empty
// objects S3 consoles create as folders (keys ending in '/').
func placeFile(rel string) (e entry, ignore bool, reason string) {
	parts := strings.Split(rel, "/")
	if name := parts[len(parts)-1]; name == "" || len(parts) == 1 {
		return entry{}, true, ""
	}
	for _, p := range parts {
		if strings.HasPrefix(p, ".") {
			return entry{}, true, ""
		}
	}
	split, ok := splitDirs[parts[0]]
	switch {
	case !ok:
		return entry{}, false, unknownSplit
	case len(parts) == 2:
		return entry{}, false, "file outside a label folder: expected split/Label/file"
	case len(parts) > 3:
		return entry{}, false, "nested folder: expected split/Label/file"
	}
	if r := checkLabel(parts[1]); r != "" {
		return entry{}, false, r
	}
	if r := checkFileName(parts[2]); r != "" {
		return entry{}, false, r
	}
	return entry{path: rel, split: split, label: parts[1], name: parts[2], size: -1}, false, ""
}

// unsafeArchivePath says why an archive entry name could write outside the
// tree if extracted, or "": absolute paths, ".." segments, and backslashes
// and drive letters, which Windows reads as such.
func unsafeArchivePath(name string) string {
	switch {
	case strings.HasPrefix(name, "/"):
		return "absolute"
	case strings.Contains(name, "\\"):
		return "a backslash, which Windows reads as a folder separator"
	case len(name) >= 2 && name[1] == ':':
		return "a drive letter"
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == ".." {
			return "it climbs out with .."
		}
	}
	return ""
}

// cleanArchivePath drops "./" segments and a trailing slash.
func cleanArchivePath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}
