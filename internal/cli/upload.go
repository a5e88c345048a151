package cli

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/upload"
)

// newLayout checks the upload's --split and --test-fraction.
func newLayout(split string, testFraction float64) (upload.Layout, error) {
	sp, err := parseSplit(split)
	if err != nil {
		return upload.Layout{}, usagef("--split: %v", err)
	}
	switch {
	case testFraction < 0 || testFraction >= 1 || math.IsNaN(testFraction):
		return upload.Layout{}, usagef("--test-fraction=%g: want a share in [0, 1)", testFraction)
	case testFraction > 0 && sp == datasetpb.Split_SPLIT_UNSPECIFIED:
		return upload.Layout{}, usagef("--test-fraction goes with --split, for a folder laid out Label/file; a split/Label/file folder says its own test split")
	case testFraction > 0 && sp == datasetpb.Split_SPLIT_TEST:
		return upload.Layout{}, usagef("--test-fraction with --split test: every file goes to the test split already")
	}
	return upload.Layout{Split: sp, TestFraction: testFraction}, nil
}

// uploadHints end the message of a folder in the wrong layout in the
// flags' words.
var uploadHints = upload.Hints{
	AddSplit:  "add --split train (and --test-fraction 0.2 to hold out a test split)",
	DropSplit: "needs no --split",
}

// upload sends folders file by file and archives as chunks, one stream per
// path, since a stream carries either files or one archive. Every folder is
// checked before anything is sent, so a folder in the wrong layout fails the
// command without a partial upload.
func (p *program) upload(ctx context.Context, c datasetpb.DatasetServiceClient, name string, paths []string, l upload.Layout, show int, quiet bool) error {
	scans := make([]*upload.Scan, len(paths))
	for i, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			s, err := upload.ScanFolder(path, l)
			if err != nil {
				return err
			}
			if len(s.Files) == 0 && len(s.Refused) == 0 {
				return s.NothingToUpload(uploadHints)
			}
			scans[i] = s
		case !upload.IsArchive(path):
			return usagef("%s: not a folder or a .zip/.tar/.tar.gz archive", path)
		case l.Split != datasetpb.Split_SPLIT_UNSPECIFIED:
			return usagef("%s: --split applies to folders; an archive must be laid out split/Label/file", path)
		}
	}
	total := &datasetpb.ImportCounts{}
	rej := &rejections{out: p.env.Stdout, show: show}
	for i, path := range paths {
		if s := scans[i]; s != nil && len(s.Skipped) > 0 {
			fmt.Fprintf(p.env.Stdout, "skipped %s of %s outside the %s layout, e.g. %s\n",
				count(len(s.Skipped), "file"), printable(path), l.Want(), printable(strings.Join(s.Skipped[:min(3, len(s.Skipped))], ", ")))
		}
		if s := scans[i]; s != nil {
			for _, r := range s.Refused {
				rej.add(r)
			}
			total.Seen += int64(len(s.Refused))
			total.Rejected += int64(len(s.Refused))
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

// uploadOne sends one folder (scan) or archive (scan nil) on its own
// stream, with a progress meter.
func (p *program) uploadOne(ctx context.Context, c datasetpb.DatasetServiceClient, name, path string, scan *upload.Scan, quiet bool) (*datasetpb.UploadImagesResponse, error) {
	desc := "uploading " + filepath.Base(path)
	var m *meter
	var resp *datasetpb.UploadImagesResponse
	var err error
	if scan != nil {
		m = newMeter(p.env.Stderr, p.env.StderrTerminal, quiet, desc, "images")
		m.setTotal(int64(len(scan.Files)))
		resp, err = upload.Folder(ctx, c, name, scan.Files, func(int) { m.add(1) })
	} else {
		m = newMeter(p.env.Stderr, p.env.StderrTerminal, quiet, desc, "bytes")
		if fi, serr := os.Stat(path); serr == nil {
			m.setTotal(fi.Size())
		}
		resp, err = upload.Archive(ctx, c, name, path, m.set)
	}
	if err != nil {
		m.stop()
		return nil, err
	}
	m.finish()
	return resp, nil
}

// tooLargeForOneMessage explains a folder upload the server ended because a
// file was larger than its message limit (grpc-go's own refusal, which
// names neither the file nor a remedy); any other error is returned as it
// is.
func tooLargeForOneMessage(err error, root string, scan *upload.Scan) error {
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
	for _, f := range scan.Files {
		// A file's message is its bytes and a few more: its names.
		if f.Size+int64(len(f.Label)+len(f.Name))+32 > limit {
			rel, _ := filepath.Rel(root, f.Path)
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
		"sends each file in one: %s; the upload stopped there, and files sent before it may have been added (a second run counts them as duplicates). Leave such files out, or upload the folder as a .zip or .tar archive, "+
		"which travels in 1 MiB pieces and whose files over the server's image limit are refused by name", limit, which)
}
