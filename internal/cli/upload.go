package cli

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

// uploadChunkBytes is the size of each archive chunk sent.
const uploadChunkBytes = 1 << 20

var archiveSuffixes = []string{".zip", ".tar", ".tar.gz", ".tgz"}

// layout says where the files of an uploaded folder go: by their split
// folder (split/Label/file), or all to one split (Label/file), with a share
// of them moved to the test split.
type layout struct {
	split        datasetpb.Split // unspecified: the folder is laid out split/Label/file
	testFraction float64
}

func newLayout(split string, testFraction float64) (layout, error) {
	sp, err := parseSplit(split)
	if err != nil {
		return layout{}, usagef("--split: %v", err)
	}
	switch {
	case testFraction < 0 || testFraction >= 1 || math.IsNaN(testFraction):
		return layout{}, usagef("--test-fraction=%g: want a share in [0, 1)", testFraction)
	case testFraction > 0 && sp == datasetpb.Split_SPLIT_UNSPECIFIED:
		return layout{}, usagef("--test-fraction goes with --split, for a folder laid out Label/file; a split/Label/file folder says its own test split")
	case testFraction > 0 && sp == datasetpb.Split_SPLIT_TEST:
		return layout{}, usagef("--test-fraction with --split test: every file goes to the test split already")
	}
	return layout{split: sp, testFraction: testFraction}, nil
}

// place gives a file's split, label and name from its slash-separated path
// relative to the folder, or ok=false when it is not where the layout wants
// files.
func (l layout) place(rel string) (split datasetpb.Split, label, name string, ok bool) {
	parts := strings.Split(rel, "/")
	if l.split == datasetpb.Split_SPLIT_UNSPECIFIED {
		if len(parts) != 3 {
			return 0, "", "", false
		}
		switch parts[0] {
		case "train", "validation", "test":
			sp, _ := parseSplit(parts[0])
			return sp, parts[1], parts[2], true
		}
		return 0, "", "", false
	}
	if len(parts) != 2 {
		return 0, "", "", false
	}
	split = l.split
	if l.testFraction > 0 && pathShare(rel) < l.testFraction {
		split = datasetpb.Split_SPLIT_TEST
	}
	return split, parts[0], parts[1], true
}

// pathShare maps a path to [0, 1) by its SHA-256: the same path always
// lands on the same side of --test-fraction, whatever else the folder holds.
func pathShare(rel string) float64 {
	sum := sha256.Sum256([]byte(rel))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

func (l layout) want() string {
	if l.split == datasetpb.Split_SPLIT_UNSPECIFIED {
		return "split/Label/file"
	}
	return "Label/file"
}

// upFile is one file of a folder to upload.
type upFile struct {
	path        string
	split       datasetpb.Split
	label, name string
	size        int64
}

// folderScan is what a folder holds: the files to send, and what the layout
// leaves out, to say so.
type folderScan struct {
	files   []upFile
	skipped []string // paths outside the layout, relative to the folder
	// refused are files in the layout that cannot be sent, with the
	// reason: not regular files, names that are not UTF-8, files too
	// large for one message. They are reported as the server reports its
	// rejections, and the rest is sent.
	refused []*datasetpb.FileRejection
	byDepth map[int]int
	top     []string // top-level entries, folders with a trailing slash
}

// maxUploadFile is the largest file the CLI sends: one file travels in one
// message, and the connection's messages are bounded at this size
// (dialOptions). The server's own bound on an image is usually smaller,
// and refuses larger ones by name.
const maxUploadFile = 64 << 20

// sendable says why the file at p (found as d) cannot be sent, or gives its
// size when it can: a regular file, or a link to one. Reading anything else would
// block (a named pipe), fail (a broken link) or read a device.
// The reasons are the server's for the same files in a server folder.
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
	case fi.Size() > maxUploadFile:
		return 0, fmt.Sprintf("%d bytes, more than the limit of %d for one file sent", fi.Size(), maxUploadFile)
	}
	return fi.Size(), ""
}

// scanFolder lists the files of root that the layout places; hidden files
// and folders (.DS_Store, .git) and top-level files (README) are not part of
// any layout and are passed over silently.
func scanFolder(root string, l layout) (*folderScan, error) {
	s := &folderScan{byDepth: map[int]int{}}
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
				s.refused = append(s.refused, &datasetpb.FileRejection{Path: strings.ToValidUTF8(rel, "\uFFFD") + "/", Reason: "symlinked folders are not followed"})
				return nil
			}
		}
		s.byDepth[depth]++
		if depth == 1 {
			return nil
		}
		split, label, name, ok := l.place(rel)
		if !ok {
			s.skipped = append(s.skipped, rel)
			return nil
		}
		size, reason := sendable(p, d, label, name)
		if reason != "" {
			// The path goes back in a protobuf string, which must be UTF-8.
			s.refused = append(s.refused, &datasetpb.FileRejection{Path: strings.ToValidUTF8(rel, "\uFFFD"), Reason: reason})
			return nil
		}
		s.files = append(s.files, upFile{path: p, split: split, label: label, name: name, size: size})
		return nil
	})
	return s, err
}

// nothingToUpload says what a folder with no file in the layout holds, and
// what the layout is. It is the class of answer the server gives for a
// server folder in the wrong layout.
func (s *folderScan) nothingToUpload(root string, l layout) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s holds no images laid out %s", root, l.want())
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
	if l.split == datasetpb.Split_SPLIT_UNSPECIFIED {
		b.WriteString(": expected train/, validation/ or test/ folders holding one folder per label, e.g. train/Cat/1.jpg")
		if s.byDepth[2] > 0 {
			b.WriteString("; for a folder laid out Label/file, add --split train (and --test-fraction 0.2 to hold out a test split)")
		}
	} else {
		b.WriteString(": with --split, expected one folder per label, e.g. Cat/1.jpg")
		if s.byDepth[3] > 0 {
			b.WriteString("; a folder laid out split/Label/file needs no --split")
		}
	}
	return status.Error(codes.InvalidArgument, b.String())
}

func hasArchiveSuffix(p string) bool {
	lower := strings.ToLower(p)
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// upload sends folders file by file and archives as chunks, one stream per
// path, since a stream carries either files or one archive. Every folder is
// checked before anything is sent, so a folder in the wrong layout fails the
// command without a partial upload.
func (p *program) upload(ctx context.Context, c datasetpb.DatasetServiceClient, name string, paths []string, l layout, show int, quiet bool) error {
	scans := make([]*folderScan, len(paths))
	for i, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			s, err := scanFolder(path, l)
			if err != nil {
				return err
			}
			if len(s.files) == 0 && len(s.refused) == 0 {
				return s.nothingToUpload(path, l)
			}
			scans[i] = s
		case !hasArchiveSuffix(path):
			return usagef("%s: not a folder or a .zip/.tar/.tar.gz archive", path)
		case l.split != datasetpb.Split_SPLIT_UNSPECIFIED:
			return usagef("%s: --split applies to folders; an archive must be laid out split/Label/file", path)
		}
	}
	total := &datasetpb.ImportCounts{}
	rej := &rejections{out: p.env.Stdout, show: show}
	for i, path := range paths {
		if s := scans[i]; s != nil && len(s.skipped) > 0 {
			fmt.Fprintf(p.env.Stdout, "skipped %s of %s outside the %s layout, e.g. %s\n",
				count(len(s.skipped), "file"), printable(path), l.want(), printable(strings.Join(s.skipped[:min(3, len(s.skipped))], ", ")))
		}
		if s := scans[i]; s != nil {
			for _, r := range s.refused {
				rej.add(r)
			}
			total.Seen += int64(len(s.refused))
			total.Rejected += int64(len(s.refused))
		}
		resp, err := p.uploadOne(ctx, c, name, path, scans[i], quiet)
		if err != nil {
			return tooLargeForOneMessage(err, path, scans[i])
		}
		for _, r := range resp.GetRejections() {
			rej.add(r)
		}
		n := resp.GetCounts()
		total.Seen += n.GetSeen()
		total.Added += n.GetAdded()
		total.Duplicates += n.GetDuplicates()
		total.Conflicts += n.GetConflicts()
		total.Rejected += n.GetRejected()
	}
	rej.summary(total)
	return nil
}

// uploadOne sends one folder (scan) or archive (scan nil) on its own stream.
func (p *program) uploadOne(ctx context.Context, c datasetpb.DatasetServiceClient, name, path string, scan *folderScan, quiet bool) (*datasetpb.UploadImagesResponse, error) {
	stream, err := c.UploadImages(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: name}}}); err != nil {
		return nil, closeErr(stream, err)
	}
	var m *meter
	if scan != nil {
		m = newMeter(p.env.Stderr, p.env.StderrTerminal, quiet, "uploading "+filepath.Base(path), "images")
		m.setTotal(int64(len(scan.files)))
		err = sendFolder(stream, scan.files, m)
	} else {
		m = newMeter(p.env.Stderr, p.env.StderrTerminal, quiet, "uploading "+filepath.Base(path), "bytes")
		err = sendArchive(stream, path, m)
	}
	if err != nil {
		m.stop()
		return nil, closeErr(stream, err)
	}
	m.finish()
	return stream.CloseAndRecv()
}

// tooLargeForOneMessage explains a folder upload the server ended because a
// file was larger than its message limit (grpc-go's own refusal, which
// names neither the file nor a remedy); any other error is returned as it
// is.
func tooLargeForOneMessage(err error, root string, scan *folderScan) error {
	st, ok := status.FromError(err)
	if !ok || scan == nil || st.Code() != codes.ResourceExhausted {
		return err
	}
	var got, limit int64
	if _, perr := fmt.Sscanf(st.Message()[max(0, strings.Index(st.Message(), "(")):], "(%d vs. %d)", &got, &limit); perr != nil ||
		!strings.Contains(st.Message(), "larger than max") {
		return err
	}
	var big []string
	for _, f := range scan.files {
		// A file's message is its bytes and a few more: its names.
		if f.size+int64(len(f.label)+len(f.name))+32 > limit {
			rel, _ := filepath.Rel(root, f.path)
			big = append(big, printable(filepath.ToSlash(rel)))
		}
	}
	which := "a file is larger"
	if len(big) > 0 {
		which = fmt.Sprintf("%s %s larger", count(len(big), "file"), map[bool]string{true: "is", false: "are"}[len(big) == 1])
		which += " (" + strings.Join(big[:min(len(big), 3)], ", ")
		if len(big) > 3 {
			which += fmt.Sprintf(" and %d more", len(big)-3)
		}
		which += ")"
	}
	return status.Errorf(codes.ResourceExhausted, "the server takes at most %d bytes in one message (its --grpc.max-message-bytes), and a folder "+
		"sends each file in one: %s; the upload stopped there. Leave such files out, or upload the folder as a .zip or .tar archive, "+
		"which travels in 1 MiB pieces and whose files over the server's image limit are refused by name", limit, which)
}

// closeErr prefers the server's reason for ending a stream over the local
// send error (io.EOF), which says nothing.
func closeErr(stream datasetpb.DatasetService_UploadImagesClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.CloseAndRecv(); rerr != nil {
			return rerr
		}
	}
	return err
}

func sendArchive(stream datasetpb.DatasetService_UploadImagesClient, path string, m *meter) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		m.setTotal(fi.Size())
	}
	buf := make([]byte, uploadChunkBytes)
	first := true
	for {
		n, err := io.ReadFull(f, buf)
		// An empty file still goes out as one chunk, its name and no data,
		// for the server to refuse; sending nothing would be an empty
		// upload, which succeeds.
		if n > 0 || first {
			chunk := &datasetpb.ArchiveChunk{Data: buf[:n]}
			if first {
				chunk.FileName, first = filepath.Base(path), false
			}
			if serr := stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: chunk}}); serr != nil {
				return serr
			}
			m.add(int64(n))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sendFolder sends each file with its split and label; the server validates
// them.
func sendFolder(stream datasetpb.DatasetService_UploadImagesClient, files []upFile, m *meter) error {
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return err
		}
		if err := stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
			Split: f.split, Label: f.label, FileName: f.name, Content: data}}}); err != nil {
			return err
		}
		m.add(1)
	}
	return nil
}
