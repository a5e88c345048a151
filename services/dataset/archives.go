package dataset

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// zipSource is a .zip archive, whose entries workers open directly.
type zipSource struct {
	r           *zip.Reader
	maxBytes    int64 // an image's limit: larger entries are refused unread
	maxExpanded int64 // bytes all entries read may expand to
}

func (z zipSource) walk(ctx context.Context, emit func(entry) error, reject func(string, string) error) error {
	t := newArchiveTracker()
	var expanded int64
	for _, f := range z.r.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		mode := f.Mode()
		e, ok, err := t.place(f.Name, mode.IsDir(), zipEntryKind(mode), reject)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		e.size = int64(min(f.UncompressedSize64, math.MaxInt64))
		// Entries may share their compressed bytes (a zip bomb of
		// overlapping entries) and each is read whole, so what they all
		// expand to is bounded. zip's reader stops an entry at its
		// declared size.
		if e.size <= z.maxBytes {
			expanded += e.size
		}
		if expanded > z.maxExpanded {
			return expandsTooMuch(z.maxExpanded)
		}
		e.open = func(context.Context) (io.ReadCloser, error) { return f.Open() }
		if err := emit(e); err != nil {
			return err
		}
	}
	return t.finish(reject)
}

// tarSource is a .tar or .tar.gz archive, read in order: each entry's bytes
// are read here (bounded by the image size limit) and handed over.
type tarSource struct {
	r           io.Reader
	maxBytes    int64
	maxExpanded int64 // bytes the whole stream may expand to
}

func (ts tarSource) walk(ctx context.Context, emit func(entry) error, reject func(string, string) error) error {
	t := newArchiveTracker()
	// Skipping an entry reads through it, and a gzip stream may expand a
	// thousandfold: the reader stops when the import does and at the limit.
	tr := tar.NewReader(&expandLimit{ctx: ctx, r: ts.r, left: ts.maxExpanded})
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return t.finish(reject)
		}
		if err := ts.stopped(ctx, err); err != nil {
			return err
		}
		if err != nil {
			return brokenArchive(err, "")
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		isDir := h.Typeflag == tar.TypeDir
		e, ok, err := t.place(h.Name, isDir, tarEntryKind(h.Typeflag), reject)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if h.Size > ts.maxBytes {
			if err := reject(e.path, fmt.Sprintf("%d bytes, more than the limit of %d", h.Size, ts.maxBytes)); err != nil {
				return err
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err := ts.stopped(ctx, err); err != nil {
			return err
		}
		if err != nil {
			return brokenArchive(err, h.Name)
		}
		e.data = data
		if err := emit(e); err != nil {
			return err
		}
	}
}

// brokenArchive is the answer to a tar or gzip stream that cannot be read
// on, at member name ("" before a member's data).
func brokenArchive(err error, name string) error {
	where := ""
	if name != "" {
		where = fmt.Sprintf(" in %q", strings.ToValidUTF8(name, "\uFFFD"))
	}
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return status.Errorf(codes.InvalidArgument, "archive is truncated: it ends%s before its last member does (was it cut off while copied or downloaded?)", where)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, &corrupt):
		return status.Errorf(codes.InvalidArgument, "archive is corrupt: its gzip data is damaged%s (%v)", where, err)
	}
	return status.Errorf(codes.InvalidArgument, "archive is not a valid tar file%s: %v", where, err)
}

// errExpandLimit ends an archive that expands past its limit.
var errExpandLimit = errors.New("archive expands past its limit")

// expandLimit reads an archive's stream, failing once it has given more
// than left bytes or the import has stopped.
type expandLimit struct {
	ctx  context.Context
	r    io.Reader
	left int64
}

func (l *expandLimit) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if l.left <= 0 {
		return 0, errExpandLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// stopped returns the error that ends the walk when a read failed because
// of expandLimit rather than the archive's bytes, or nil.
func (ts tarSource) stopped(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errExpandLimit):
		return expandsTooMuch(ts.maxExpanded)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return nil
}

func expandsTooMuch(limit int64) error {
	return status.Errorf(codes.ResourceExhausted, "archive expands to more than the limit of %d bytes (dataset.max-archive-bytes)", limit)
}

// archiveTracker applies the layout rules to archive entry names and finds
// label folders that hold no file.
type archiveTracker struct {
	labelDirs map[string]bool // split/Label -> has a file
	badSplit  map[string]bool
	placed    int      // entries in the layout
	top       []string // top-level names, for the answer when nothing fits
}

func newArchiveTracker() *archiveTracker {
	return &archiveTracker{labelDirs: map[string]bool{}, badSplit: map[string]bool{}}
}

// notRegular says why an archive member that is not a regular file or a
// folder is not imported; "" for one that is.
type notRegular string

const (
	regularEntry notRegular = ""
	linkEntry    notRegular = "links in archives are not imported"
)

func special(what string) notRegular { return notRegular("not a regular file (" + what + ")") }

// zipEntryKind is what a zip member's mode makes it.
func zipEntryKind(mode fs.FileMode) notRegular {
	switch {
	case mode.IsRegular() || mode.IsDir():
		return regularEntry
	case mode&fs.ModeSymlink != 0:
		return linkEntry
	case mode&fs.ModeNamedPipe != 0:
		return special("a named pipe")
	case mode&fs.ModeCharDevice != 0:
		return special("a character device")
	case mode&fs.ModeDevice != 0:
		return special("a block device")
	case mode&fs.ModeSocket != 0:
		return special("a socket")
	}
	return special(mode.Type().String())
}

// tarEntryKind is what a tar member's type flag makes it.
func tarEntryKind(flag byte) notRegular {
	switch flag {
	case tar.TypeReg, tar.TypeDir:
		return regularEntry
	case tar.TypeSymlink, tar.TypeLink:
		return linkEntry
	case tar.TypeFifo:
		return special("a named pipe")
	case tar.TypeChar:
		return special("a character device")
	case tar.TypeBlock:
		return special("a block device")
	}
	return special(fmt.Sprintf("tar entry type %q", flag))
}

// place returns the entry for an archive member, or ok=false when it was
// skipped or rejected (err is reject's).
func (t *archiveTracker) place(name string, isDir bool, kind notRegular, reject func(string, string) error) (entry, bool, error) {
	if why := unsafeArchivePath(name); why != "" {
		// Named in the answer when nothing else can be imported.
		t.top = append(t.top, name+" (unsafe)")
		return entry{}, false, reject(name, "unsafe archive path ("+why+"): not imported")
	}
	rel := cleanArchivePath(name)
	if rel == "" {
		return entry{}, false, nil
	}
	parts := strings.Split(rel, "/")
	top := parts[0]
	if isDir || len(parts) > 1 {
		top += "/"
	}
	if !strings.HasPrefix(top, ".") && !slices.Contains(t.top, top) {
		t.top = append(t.top, top)
	}
	if isDir {
		if len(parts) >= 1 {
			if _, ok := splitDirs[parts[0]]; !ok && !strings.HasPrefix(parts[0], ".") && !t.badSplit[parts[0]] {
				t.badSplit[parts[0]] = true
				return entry{}, false, reject(parts[0]+"/", unknownSplit)
			}
		}
		if len(parts) == 2 && !strings.HasPrefix(parts[1], ".") {
			if _, seen := t.labelDirs[rel]; !seen {
				t.labelDirs[rel] = false
			}
		}
		return entry{}, false, nil
	}
	e, ignore, reason := placeFile(rel)
	switch {
	case ignore:
		return entry{}, false, nil
	case kind != regularEntry:
		// Whatever its place in the layout: a link to a folder sits where
		// a label folder would.
		if len(parts) == 3 {
			t.labelDirs[parts[0]+"/"+parts[1]] = true
		}
		t.placed++
		return entry{}, false, reject(rel, string(kind))
	case reason == unknownSplit:
		if t.badSplit[parts[0]] {
			return entry{}, false, nil
		}
		t.badSplit[parts[0]] = true
		return entry{}, false, reject(parts[0]+"/", reason)
	case reason != "":
		return entry{}, false, reject(rel, reason)
	}
	t.labelDirs[parts[0]+"/"+parts[1]] = true
	t.placed++
	return e, true, nil
}

func (t *archiveTracker) finish(reject func(string, string) error) error {
	var empty []string
	for dir, has := range t.labelDirs {
		if !has {
			empty = append(empty, dir)
		}
	}
	slices.Sort(empty)
	for _, dir := range empty {
		if err := reject(dir+"/", "empty label folder"); err != nil {
			return err
		}
	}
	if t.placed == 0 {
		return nothingToImport("the archive", t.top)
	}
	return nil
}

// archiveFile is a spooled archive: zip reads it at random, tar in order.
type archiveFile interface {
	io.Reader
	io.ReaderAt
}

// openArchive returns the source for a spooled archive, by its file name.
// What the entries read expand to is bounded by the archive limit too.
func openArchive(f archiveFile, size int64, name string, cfg Config) (source, func() error, error) {
	lower := strings.ToLower(name)
	if size == 0 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "archive %q is empty (0 bytes)", filepath.Base(name))
	}
	if is, named := sniffArchive(f), archiveKind(lower); is != "" && named != "" && is != named {
		return nil, nil, status.Errorf(codes.InvalidArgument, "archive %q is a %s file, not a %s one: name it %s",
			filepath.Base(name), is, named, map[string]string{"zip": ".zip", "tar": ".tar", "gzip": ".tar.gz"}[is])
	}
	switch {
	case strings.HasSuffix(lower, ".zip"):
		if n := zipEntries(f, size, uint64(cfg.MaxArchiveEntries)); n > uint64(cfg.MaxArchiveEntries) {
			return nil, nil, status.Errorf(codes.ResourceExhausted, "archive %q lists more than %d entries (dataset.max-archive-entries)", filepath.Base(name), cfg.MaxArchiveEntries)
		}
		zr, err := zip.NewReader(f, size)
		if err != nil {
			return nil, nil, status.Errorf(codes.InvalidArgument, "archive %q is not a valid zip file", filepath.Base(name))
		}
		return zipSource{r: zr, maxBytes: cfg.MaxImageBytes, maxExpanded: cfg.MaxArchiveBytes}, func() error { return nil }, nil
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, nil, status.Errorf(codes.InvalidArgument, "archive %q is not a valid gzip file", filepath.Base(name))
		}
		return tarSource{r: gz, maxBytes: cfg.MaxImageBytes, maxExpanded: cfg.MaxArchiveBytes}, gz.Close, nil
	case strings.HasSuffix(lower, ".tar"):
		return tarSource{r: f, maxBytes: cfg.MaxImageBytes, maxExpanded: cfg.MaxArchiveBytes}, func() error { return nil }, nil
	}
	return nil, nil, status.Errorf(codes.InvalidArgument, "archive %q: unknown kind; name it .zip, .tar, .tar.gz or .tgz", filepath.Base(name))
}

// archiveKind is the kind of archive a file name says: zip, tar or gzip
// (a .tar.gz), or "".
func archiveKind(lower string) string {
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return "zip"
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		return "gzip"
	case strings.HasSuffix(lower, ".tar"):
		return "tar"
	}
	return ""
}

// sniffArchive is the kind of archive a file's bytes say it is: zip, tar
// (the POSIX "ustar" magic) or gzip, or "" when they say none.
func sniffArchive(r io.ReaderAt) string {
	var b [263]byte
	n, _ := r.ReadAt(b[:], 0)
	switch {
	case n >= 4 && (string(b[:4]) == "PK\x03\x04" || string(b[:4]) == "PK\x05\x06"):
		return "zip"
	case n >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return "gzip"
	case n >= 262 && string(b[257:262]) == "ustar":
		return "tar"
	}
	return ""
}

// zipEntries counts the entries of a zip's central directory as
// archive/zip will read them (reader.go: readDirectoryEnd, Reader.init),
// up to stopAfter+1, without holding them: archive/zip keeps an index of
// every entry, a few hundred bytes each, before any is read, and reads
// headers for as long as they follow one another, whatever count the
// directory's end declares. 0 means zip.NewReader will fail anyway. The
// count is never below archive/zip's.
func zipEntries(r io.ReaderAt, size int64, stopAfter uint64) uint64 {
	const (
		endLen     = 22 // end of central directory record, without its comment
		locatorLen = 20 // zip64 end of central directory locator
		end64Len   = 56 // zip64 end of central directory record
	)
	buf := make([]byte, min(size, 65*1024))
	if _, err := r.ReadAt(buf, size-int64(len(buf))); err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	// The last signature; its comment must fit in the file.
	p := -1
	for i := len(buf) - endLen; i >= 0 && p < 0; i-- {
		if string(buf[i:i+4]) == "PK\x05\x06" {
			if i+endLen+int(binary.LittleEndian.Uint16(buf[i+20:])) > len(buf) {
				return 0
			}
			p = i
		}
	}
	if p < 0 {
		return 0
	}
	end := buf[p:]
	endOffset := size - int64(len(buf)) + int64(p)
	dirSize, dirOffset := uint64(binary.LittleEndian.Uint32(end[12:])), uint64(binary.LittleEndian.Uint32(end[16:]))
	if binary.LittleEndian.Uint16(end[10:]) == 0xffff || dirSize == 0xffff || dirOffset == 0xffffffff {
		// Zip64, if the locator just before the record says so.
		var loc [locatorLen]byte
		if endOffset >= locatorLen {
			if _, err := r.ReadAt(loc[:], endOffset-locatorLen); err != nil {
				return 0
			}
		}
		if endOffset >= locatorLen && string(loc[:4]) == "PK\x06\x07" && binary.LittleEndian.Uint32(loc[4:]) == 0 && binary.LittleEndian.Uint32(loc[16:]) == 1 {
			off := int64(binary.LittleEndian.Uint64(loc[8:]))
			var rec [end64Len]byte
			if off < 0 || off > size-end64Len {
				return 0
			}
			if _, err := r.ReadAt(rec[:], off); err != nil || string(rec[:4]) != "PK\x06\x06" {
				return 0
			}
			endOffset, dirSize, dirOffset = off, binary.LittleEndian.Uint64(rec[40:]), binary.LittleEndian.Uint64(rec[48:])
		}
	}
	if dirSize > math.MaxInt64 || dirOffset > math.MaxInt64 {
		return 0
	}
	base := endOffset - int64(dirSize) - int64(dirOffset)
	start := base + int64(dirOffset)
	if start < 0 || start >= size {
		return 0
	}
	n := countZipHeaders(r, size, start, stopAfter)
	if base > 0 { // archive/zip may read from base 0 instead
		n = max(n, countZipHeaders(r, size, int64(dirOffset), stopAfter))
	}
	return n
}

// countZipHeaders counts the central directory headers that follow one
// another from off, up to stopAfter+1.
func countZipHeaders(r io.ReaderAt, size, off int64, stopAfter uint64) uint64 {
	if off < 0 || off >= size {
		return 0
	}
	br := bufio.NewReader(io.NewSectionReader(r, off, size-off))
	var h [46]byte
	var n uint64
	for n <= stopAfter {
		if _, err := io.ReadFull(br, h[:]); err != nil || string(h[:4]) != "PK\x01\x02" {
			return n
		}
		rest := int(binary.LittleEndian.Uint16(h[28:])) + int(binary.LittleEndian.Uint16(h[30:])) + int(binary.LittleEndian.Uint16(h[32:]))
		if skipped, _ := br.Discard(rest); skipped < rest {
			return n
		}
		n++
	}
	return n
}
