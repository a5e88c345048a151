// Package upload sends images from the caller's machine to the Dataset
// service's UploadImages stream: a folder file by file, in the layout the
// server imports (split/Label/file, or Label/file into one split), or an
// archive as it is, in chunks. `shoal dataset upload` and the Go SDK
// (client.UploadDir) both upload through it, so the two place every file
// alike.
package upload

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

// ChunkBytes is the size of each archive chunk sent.
const ChunkBytes = 1 << 20

var archiveSuffixes = []string{".zip", ".tar", ".tar.gz", ".tgz"}

// IsArchive reports whether path names an archive the server unpacks.
func IsArchive(path string) bool {
	lower := strings.ToLower(path)
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// Layout says where the files of an uploaded folder go: by their split
// folder (split/Label/file), or all to one split (Label/file), with a share
// of them moved to the test split.
type Layout struct {
	// Split is the split of a folder laid out Label/file; unspecified: the
	// folder is laid out split/Label/file.
	Split datasetpb.Split
	// TestFraction is the share, in [0, 1), of a Label/file folder's files
	// that go to the test split instead of Split, chosen by a hash of each
	// file's path.
	TestFraction float64
}

// Validate checks the fields go together; its messages name them as the
// Go SDK spells them, and the CLI says the same of its flags.
func (l Layout) Validate() error {
	switch {
	case l.TestFraction < 0 || l.TestFraction >= 1 || math.IsNaN(l.TestFraction):
		return fmt.Errorf("test fraction %g: want a share in [0, 1)", l.TestFraction)
	case l.TestFraction > 0 && l.Split == datasetpb.Split_SPLIT_UNSPECIFIED:
		return errors.New("a test fraction goes with a split, for a folder laid out Label/file; a split/Label/file folder says its own test split")
	case l.TestFraction > 0 && l.Split == datasetpb.Split_SPLIT_TEST:
		return errors.New("a test fraction with the test split: every file goes to the test split already")
	}
	return nil
}

var splitFolders = map[string]datasetpb.Split{
	"train": datasetpb.Split_SPLIT_TRAIN, "validation": datasetpb.Split_SPLIT_VALIDATION, "test": datasetpb.Split_SPLIT_TEST,
}

// Place gives a file's split, label and name from its slash-separated path
// relative to the folder, or ok=false when it is not where the layout wants
// files.
func (l Layout) Place(rel string) (split datasetpb.Split, label, name string, ok bool) {
	parts := strings.Split(rel, "/")
	if l.Split == datasetpb.Split_SPLIT_UNSPECIFIED {
		if len(parts) != 3 {
			return 0, "", "", false
		}
		split, ok = splitFolders[parts[0]]
		if !ok {
			return 0, "", "", false
		}
		return split, parts[1], parts[2], true
	}
	if len(parts) != 2 {
		return 0, "", "", false
	}
	split = l.Split
	if l.TestFraction > 0 && pathShare(rel) < l.TestFraction {
		split = datasetpb.Split_SPLIT_TEST
	}
	return split, parts[0], parts[1], true
}

// pathShare maps a path to [0, 1) by its SHA-256: the same path always
// lands on the same side of a test fraction, whatever else the folder holds.
func pathShare(rel string) float64 {
	sum := sha256.Sum256([]byte(rel))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// Want names the layout, for messages.
func (l Layout) Want() string {
	if l.Split == datasetpb.Split_SPLIT_UNSPECIFIED {
		return "split/Label/file"
	}
	return "Label/file"
}

// File is one file of a folder to upload.
type File struct {
	// Path is the file on this machine.
	Path string
	// Split, Label and Name are where the layout places it.
	Split       datasetpb.Split
	Label, Name string
	// Size is its length in bytes when scanned.
	Size int64
}

// Scan is what a folder holds: the files to send, and what the layout
// leaves out, to say so.
type Scan struct {
	Root   string
	Layout Layout
	// Files are the files the layout places, in lexical order.
	Files []File
	// Skipped are the paths, relative to Root, outside the layout.
	Skipped []string
	// Refused are files in the layout that cannot be sent, with the
	// reason: not regular files, names that are not UTF-8, files too
	// large for one message. They are reported as the server reports its
	// rejections, and the rest is sent.
	Refused []*datasetpb.FileRejection

	byDepth map[int]int
	top     []string // top-level entries, folders with a trailing slash
}

// MaxFile is the largest file a folder upload sends: one file travels in
// one message, and callers bound their connection's messages at this size.
// The server's own bound on an image is usually smaller, and refuses larger
// ones by name.
const MaxFile = 64 << 20

// sendable says why the file at p (found as d) cannot be sent, or gives its
// size when it can: a regular file, or a link to one. Reading anything else
// would block (a named pipe), fail (a broken link) or read a device. The
// reasons are the server's for the same files in a server folder.
func sendable(p string, d fs.DirEntry, label, name string) (size int64, reason string) {
	fi, err := d.Info()
	if err != nil {
		return 0, "cannot read: " + err.Error()
	}
	if d.Type()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(p); err != nil {
			return 0, "broken symlink"
		}
	}
	switch {
	case !fi.Mode().IsRegular():
		return 0, "not a regular file"
	case !utf8.ValidString(label):
		return 0, "label is not valid UTF-8"
	case !utf8.ValidString(name):
		return 0, "file name is not valid UTF-8"
	case fi.Size() > MaxFile:
		return 0, fmt.Sprintf("%d bytes, more than the limit of %d for one file sent", fi.Size(), MaxFile)
	}
	return fi.Size(), ""
}

// ScanFolder lists the files of root that the layout places; hidden files
// and folders (.DS_Store, .git) and top-level files (README) are not part of
// any layout and are passed over silently.
func ScanFolder(root string, l Layout) (*Scan, error) {
	s := &Scan{Root: root, Layout: l, byDepth: map[int]int{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		depth := strings.Count(rel, "/") + 1
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if depth == 1 {
			name := d.Name()
			if d.IsDir() {
				name += "/"
			}
			s.top = append(s.top, name)
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				s.Refused = append(s.Refused, &datasetpb.FileRejection{Path: strings.ToValidUTF8(rel, "\uFFFD") + "/", Reason: "symlinked folders are not followed"})
				return nil
			}
		}
		s.byDepth[depth]++
		if depth == 1 {
			return nil
		}
		split, label, name, ok := l.Place(rel)
		if !ok {
			s.Skipped = append(s.Skipped, rel)
			return nil
		}
		size, reason := sendable(p, d, label, name)
		if reason != "" {
			// The path goes back in a protobuf string, which must be UTF-8.
			s.Refused = append(s.Refused, &datasetpb.FileRejection{Path: strings.ToValidUTF8(rel, "\uFFFD"), Reason: reason})
			return nil
		}
		s.Files = append(s.Files, File{Path: p, Split: split, Label: label, Name: name, Size: size})
		return nil
	})
	return s, err
}

// Hints finish the message of a folder whose files the layout does not
// place, in the words of the caller's interface (a flag, a field).
type Hints struct {
	// AddSplit follows "for a folder laid out Label/file, " when the
	// folder is scanned without a split, e.g. "add --split train".
	AddSplit string
	// DropSplit follows "a folder laid out split/Label/file " when the
	// folder is scanned with a split, e.g. "needs no --split".
	DropSplit string
}

// NothingToUpload says what a folder with no file in the layout holds and
// what the layout is, as an InvalidArgument status: the class of answer the
// server gives for a server folder in the wrong layout.
func (s *Scan) NothingToUpload(h Hints) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s holds no images laid out %s", s.Root, s.Layout.Want())
	if len(s.top) == 0 {
		b.WriteString(" (it is empty)")
	} else {
		shown := s.top[:min(len(s.top), 5)]
		fmt.Fprintf(&b, " (it holds %s", strings.Join(shown, ", "))
		if more := len(s.top) - len(shown); more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
		var depths []string
		for _, d := range []int{2, 3} {
			if n := s.byDepth[d]; n > 0 {
				depths = append(depths, fmt.Sprintf("%d files at %s", n, map[int]string{2: "Label/file", 3: "split/Label/file"}[d]))
			}
		}
		if len(depths) > 0 {
			b.WriteString("; " + strings.Join(depths, ", "))
		}
		b.WriteString(")")
	}
	if s.Layout.Split == datasetpb.Split_SPLIT_UNSPECIFIED {
		b.WriteString(": expected train/, validation/ or test/ folders holding one folder per label, e.g. train/Cat/1.jpg")
		if s.byDepth[2] > 0 && h.AddSplit != "" {
			b.WriteString("; for a folder laid out Label/file, " + h.AddSplit)
		}
	} else {
		b.WriteString(": with a split given, expected one folder per label, e.g. Cat/1.jpg")
		if s.byDepth[3] > 0 && h.DropSplit != "" {
			b.WriteString("; a folder laid out split/Label/file " + h.DropSplit)
		}
	}
	return status.Error(codes.InvalidArgument, b.String())
}

// Folder sends files on one UploadImages stream into dataset, each with its
// split and label (the server validates them), calling sent (if not nil)
// with the count sent so far after each.
func Folder(ctx context.Context, c datasetpb.DatasetServiceClient, dataset string, files []File, sent func(n int)) (*datasetpb.UploadImagesResponse, error) {
	return stream(ctx, c, dataset, func(s datasetpb.DatasetService_UploadImagesClient) error {
		for i, f := range files {
			data, err := os.ReadFile(f.Path)
			if err != nil {
				return err
			}
			if err := s.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
				Split: f.Split, Label: f.Label, FileName: f.Name, Content: data}}}); err != nil {
				return err
			}
			if sent != nil {
				sent(i + 1)
			}
		}
		return nil
	})
}

// Archive sends the archive at path on one UploadImages stream into
// dataset, in chunks of ChunkBytes, calling sent (if not nil) with the bytes
// sent so far after each.
func Archive(ctx context.Context, c datasetpb.DatasetServiceClient, dataset, path string, sent func(n int64)) (*datasetpb.UploadImagesResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return stream(ctx, c, dataset, func(s datasetpb.DatasetService_UploadImagesClient) error {
		buf := make([]byte, ChunkBytes)
		var total int64
		for first := true; ; first = false {
			n, err := io.ReadFull(f, buf)
			// An empty file still goes out as one chunk, its name and no
			// data, for the server to refuse; sending nothing would be an
			// empty upload, which succeeds.
			if n > 0 || first {
				chunk := &datasetpb.ArchiveChunk{Data: buf[:n]}
				if first {
					chunk.FileName = filepath.Base(path)
				}
				if serr := s.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: chunk}}); serr != nil {
					return serr
				}
				total += int64(n)
				if sent != nil {
					sent(total)
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// stream opens an UploadImages stream, sends the header naming dataset,
// then what send sends, and returns the server's answer.
func stream(ctx context.Context, c datasetpb.DatasetServiceClient, dataset string, send func(datasetpb.DatasetService_UploadImagesClient) error) (*datasetpb.UploadImagesResponse, error) {
	// The stream ends with the call: a failed send must not leave it open.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.UploadImages(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: dataset}}}); err != nil {
		return nil, closeErr(s, err)
	}
	if err := send(s); err != nil {
		return nil, closeErr(s, err)
	}
	return s.CloseAndRecv()
}

// closeErr prefers the server's reason for ending a stream over the local
// send error (io.EOF), which says nothing.
func closeErr(s datasetpb.DatasetService_UploadImagesClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := s.CloseAndRecv(); rerr != nil {
			return rerr
		}
	}
	return err
}
