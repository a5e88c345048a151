package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"google.golang.org/grpc"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

const datasetUsage = `Usage: shoal dataset <command> [flags] [args]

Commands:
  create NAME [--description TEXT]      create an empty dataset
  ls [NAME]                             list datasets, or the images of NAME (--split, --label, --limit)
  import NAME PATH                      import a folder on the server laid out split/Label/file
  import NAME --bucket B [--prefix P]   import a bucket prefix of the server's S3 store
  upload NAME PATH...                   upload local folders (split/Label/file) or .zip/.tar/.tar.gz archives
  stats NAME [--snapshot N]             image counts per split and label, and image sizes
  snapshot NAME [--description TEXT]    freeze the dataset's membership as a new numbered snapshot
  snapshots NAME                        list a dataset's snapshots
  rm NAME                               delete a dataset, its snapshots and its unshared blobs

Every command takes --addr (default localhost:9090), the gRPC address of a Shoal server
running the dataset service, and --timeout.
`

// Dataset runs `shoal dataset ...`.
func Dataset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, datasetUsage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("shoal dataset "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:9090", "gRPC address of the dataset service")
	timeout := fs.Duration("timeout", 24*time.Hour, "bound on the whole command")
	var run func(context.Context, datasetpb.DatasetServiceClient, []string) error
	switch cmd {
	case "create":
		desc := fs.String("description", "", "free text shown in the UI")
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if err := wantArgs(pos, 1, 1, "dataset create NAME [--description TEXT]"); err != nil {
				return err
			}
			resp, err := c.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: pos[0], Description: *desc})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created dataset %s\n", resp.GetDataset().GetName())
			return nil
		}
	case "ls", "list":
		split := fs.String("split", "", "only this split: train, validation or test")
		label := fs.String("label", "", "only this label")
		limit := fs.Int("limit", 50, "images to list")
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if err := wantArgs(pos, 0, 1, "dataset ls [NAME] [--split S] [--label L] [--limit N]"); err != nil {
				return err
			}
			if len(pos) == 0 {
				return datasetList(ctx, c, stdout)
			}
			sp, err := parseSplit(*split)
			if err != nil {
				return err
			}
			return imageList(ctx, c, pos[0], sp, *label, *limit, stdout)
		}
	case "import":
		bucket := fs.String("bucket", "", "import from this bucket of the server's S3 store instead of a server folder")
		prefix := fs.String("prefix", "", "key prefix of the tree in --bucket")
		show := fs.Int("show-rejections", 20, "rejected files to print (the counts cover all)")
		quiet := fs.Bool("quiet", false, "no progress bar")
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			req := &datasetpb.ImportImagesRequest{}
			switch {
			case *bucket != "" && len(pos) == 1:
				req.Dataset = pos[0]
				req.Source = &datasetpb.ImportImagesRequest_ObjectStore{ObjectStore: &datasetpb.ObjectStoreSource{Bucket: *bucket, Prefix: *prefix}}
			case *bucket == "" && len(pos) == 2:
				req.Dataset = pos[0]
				req.Source = &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: pos[1]}}
			default:
				return errors.New("usage: shoal dataset import NAME PATH, or import NAME --bucket B [--prefix P]")
			}
			return importImages(ctx, c, req, *show, *quiet, stdout, stderr)
		}
	case "upload":
		show := fs.Int("show-rejections", 20, "rejected files to print (the counts cover all)")
		quiet := fs.Bool("quiet", false, "no progress bar")
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if len(pos) < 2 {
				return errors.New("usage: shoal dataset upload NAME PATH... (folders laid out split/Label/file, or .zip/.tar/.tar.gz archives)")
			}
			return upload(ctx, c, pos[0], pos[1:], *show, *quiet, stdout, stderr)
		}
	case "stats":
		snapshot := fs.Int64("snapshot", 0, "stats of this snapshot version instead of the current images")
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if err := wantArgs(pos, 1, 1, "dataset stats NAME [--snapshot N]"); err != nil {
				return err
			}
			return stats(ctx, c, pos[0], *snapshot, stdout)
		}
	case "snapshot":
		desc := fs.String("description", "", "free text, e.g. what changed")
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if err := wantArgs(pos, 1, 1, "dataset snapshot NAME [--description TEXT]"); err != nil {
				return err
			}
			resp, err := c.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: pos[0], Description: *desc})
			if err != nil {
				return err
			}
			s := resp.GetSnapshot()
			fmt.Fprintf(stdout, "created %s snapshot %d: %d images, manifest sha256:%s\n", s.GetDataset(), s.GetVersion(), s.GetImageCount(), s.GetManifestSha256())
			return printCounts(stdout, s.GetCounts())
		}
	case "snapshots":
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if err := wantArgs(pos, 1, 1, "dataset snapshots NAME"); err != nil {
				return err
			}
			return snapshotList(ctx, c, pos[0], stdout)
		}
	case "rm", "delete":
		run = func(ctx context.Context, c datasetpb.DatasetServiceClient, pos []string) error {
			if err := wantArgs(pos, 1, 1, "dataset rm NAME"); err != nil {
				return err
			}
			resp, err := c.DeleteDataset(ctx, &datasetpb.DeleteDatasetRequest{Name: pos[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted dataset %s: %d images, %d blobs no other dataset used\n", pos[0], resp.GetImagesDeleted(), resp.GetBlobsDeleted())
			return nil
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, datasetUsage)
		return nil
	default:
		fmt.Fprint(stderr, datasetUsage)
		return fmt.Errorf("dataset: unknown command %q", cmd)
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	return call(ctx, *addr, *timeout, func(ctx context.Context, conn *grpc.ClientConn) error {
		return run(ctx, datasetpb.NewDatasetServiceClient(conn), pos)
	})
}

func parseSplit(s string) (datasetpb.Split, error) {
	switch strings.ToLower(s) {
	case "":
		return datasetpb.Split_SPLIT_UNSPECIFIED, nil
	case "train":
		return datasetpb.Split_SPLIT_TRAIN, nil
	case "validation", "val":
		return datasetpb.Split_SPLIT_VALIDATION, nil
	case "test":
		return datasetpb.Split_SPLIT_TEST, nil
	}
	return 0, fmt.Errorf("split %q: use train, validation or test", s)
}

func splitName(s datasetpb.Split) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SPLIT_"))
}

func datasetList(ctx context.Context, c datasetpb.DatasetServiceClient, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGES\tLABELS\tSNAPSHOTS\tUPDATED")
	tok := ""
	for {
		resp, err := c.ListDatasets(ctx, &datasetpb.ListDatasetsRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			return err
		}
		for _, d := range resp.GetDatasets() {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", d.GetName(), d.GetImageCount(), len(d.GetLabels()), d.GetSnapshotCount(),
				d.GetUpdateTime().AsTime().UTC().Format("2006-01-02 15:04:05"))
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			return tw.Flush()
		}
	}
}

func imageList(ctx context.Context, c datasetpb.DatasetServiceClient, name string, split datasetpb.Split, label string, limit int, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSPLIT\tLABEL\tFILE\tSIZE\tFORMAT\tSHA256")
	tok := ""
	shown := 0
	var total int64
	for shown < limit {
		resp, err := c.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: name, Split: split, Label: label,
			PageSize: int32(min(limit-shown, 1000)), PageToken: tok})
		if err != nil {
			return err
		}
		total = resp.GetTotalSize()
		for _, img := range resp.GetImages() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dx%d\t%s\t%s\n", img.GetId(), splitName(img.GetSplit()), img.GetLabel(), img.GetFileName(),
				img.GetWidth(), img.GetHeight(), strings.ToLower(strings.TrimPrefix(img.GetFormat().String(), "IMAGE_FORMAT_")), img.GetSha256()[:12])
			shown++
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d of %d images\n", shown, total)
	return nil
}

func stats(ctx context.Context, c datasetpb.DatasetServiceClient, name string, snapshot int64, out io.Writer) error {
	resp, err := c.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: name, SnapshotVersion: snapshot})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d images, %d bytes\n", resp.GetImageCount(), resp.GetTotalBytes())
	if err := printCounts(out, resp.GetCounts()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LONGER SIDE\tIMAGES")
	for _, b := range resp.GetSizes() {
		if b.GetCount() == 0 {
			continue
		}
		hi := "∞"
		if b.GetMaxPixels() > 0 {
			hi = strconv.Itoa(int(b.GetMaxPixels()))
		}
		fmt.Fprintf(tw, "[%d, %s) px\t%d\n", b.GetMinPixels(), hi, b.GetCount())
	}
	return tw.Flush()
}

func printCounts(out io.Writer, counts []*datasetpb.LabelCount) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPLIT\tLABEL\tIMAGES")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", splitName(c.GetSplit()), c.GetLabel(), c.GetCount())
	}
	return tw.Flush()
}

func snapshotList(ctx context.Context, c datasetpb.DatasetServiceClient, name string, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tIMAGES\tCREATED\tMANIFEST\tDESCRIPTION")
	tok := ""
	for {
		resp, err := c.ListSnapshots(ctx, &datasetpb.ListSnapshotsRequest{Dataset: name, PageSize: 1000, PageToken: tok})
		if err != nil {
			return err
		}
		for _, s := range resp.GetSnapshots() {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", s.GetVersion(), s.GetImageCount(),
				s.GetCreateTime().AsTime().UTC().Format("2006-01-02 15:04:05"), s.GetManifestSha256()[:12], s.GetDescription())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			return tw.Flush()
		}
	}
}

// newBar is a progress bar on stderr; hidden with --quiet.
func newBar(stderr io.Writer, desc string, quiet bool) *progressbar.ProgressBar {
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("images"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(!quiet),
		progressbar.OptionClearOnFinish(),
		// Redraw on updates only: a spinner interval would start a goroutine
		// the bar owns until Finish.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
}

// rejections prints the first few rejected files and counts the rest.
type rejections struct {
	out   io.Writer
	show  int
	count int
}

func (r *rejections) add(f *datasetpb.FileRejection) {
	r.count++
	if r.count <= r.show {
		fmt.Fprintf(r.out, "rejected %s: %s\n", f.GetPath(), f.GetReason())
	}
}

func (r *rejections) summary(c *datasetpb.ImportCounts) {
	if hidden := r.count - r.show; hidden > 0 {
		fmt.Fprintf(r.out, "... and %d more (see --show-rejections)\n", hidden)
	}
	fmt.Fprintf(r.out, "seen %d: added %d, duplicates %d, conflicts %d, rejected %d\n",
		c.GetSeen(), c.GetAdded(), c.GetDuplicates(), c.GetConflicts(), c.GetRejected())
}

func importImages(ctx context.Context, c datasetpb.DatasetServiceClient, req *datasetpb.ImportImagesRequest, show int, quiet bool, stdout, stderr io.Writer) error {
	stream, err := c.ImportImages(ctx, req)
	if err != nil {
		return err
	}
	bar := newBar(stderr, "importing", quiet)
	rej := &rejections{out: stdout, show: show}
	for {
		msg, err := stream.Recv()
		if err != nil {
			_ = bar.Exit()
			if errors.Is(err, io.EOF) {
				return errors.New("import: the server ended the stream without a result")
			}
			return err
		}
		switch ev := msg.GetEvent().(type) {
		case *datasetpb.ImportImagesResponse_Progress:
			bar.ChangeMax64(ev.Progress.GetTotal())
			_ = bar.Set64(ev.Progress.GetCounts().GetSeen())
		case *datasetpb.ImportImagesResponse_Rejection:
			rej.add(ev.Rejection)
		case *datasetpb.ImportImagesResponse_Done:
			_ = bar.Finish()
			rej.summary(ev.Done)
			return nil
		}
	}
}

// uploadChunkBytes is the size of each archive chunk sent.
const uploadChunkBytes = 1 << 20

var archiveSuffixes = []string{".zip", ".tar", ".tar.gz", ".tgz"}

// upload sends archives as chunks and folders file by file, one stream per
// path, since a stream carries either files or one archive.
func upload(ctx context.Context, c datasetpb.DatasetServiceClient, name string, paths []string, show int, quiet bool, stdout, stderr io.Writer) error {
	total := &datasetpb.ImportCounts{}
	rej := &rejections{out: stdout, show: show}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		stream, err := c.UploadImages(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: name}}}); err != nil {
			return closeErr(stream, err)
		}
		bar := newBar(stderr, "uploading "+filepath.Base(p), quiet)
		switch {
		case fi.IsDir():
			err = sendFolder(stream, p, bar)
		case hasArchiveSuffix(p):
			err = sendArchive(stream, p, fi.Size(), bar)
		default:
			err = fmt.Errorf("%s: not a folder or a .zip/.tar/.tar.gz archive", p)
		}
		if err != nil {
			_ = bar.Exit()
			return closeErr(stream, err)
		}
		resp, err := stream.CloseAndRecv()
		_ = bar.Finish()
		if err != nil {
			return err
		}
		for _, r := range resp.GetRejections() {
			rej.add(r)
		}
		c := resp.GetCounts()
		total.Seen += c.GetSeen()
		total.Added += c.GetAdded()
		total.Duplicates += c.GetDuplicates()
		total.Conflicts += c.GetConflicts()
		total.Rejected += c.GetRejected()
	}
	rej.summary(total)
	return nil
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

func hasArchiveSuffix(p string) bool {
	lower := strings.ToLower(p)
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

func sendArchive(stream datasetpb.DatasetService_UploadImagesClient, p string, size int64, bar *progressbar.ProgressBar) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	bar.ChangeMax64(size)
	buf := make([]byte, uploadChunkBytes)
	first := true
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			chunk := &datasetpb.ArchiveChunk{Data: buf[:n]}
			if first {
				chunk.FileName, first = filepath.Base(p), false
			}
			if serr := stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: chunk}}); serr != nil {
				return serr
			}
			_ = bar.Add(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sendFolder sends every file under root/split/Label/ with its split and
// label; the server validates them (and rejects unknown splits).
func sendFolder(stream datasetpb.DatasetService_UploadImagesClient, root string, bar *progressbar.ProgressBar) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 || strings.HasPrefix(d.Name(), ".") {
			return nil // top-level files (README, NOTICE) and stray files are not images of the layout
		}
		split, err := parseSplit(parts[0])
		if err != nil || split == datasetpb.Split_SPLIT_UNSPECIFIED || parts[0] == "val" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		bar.AddMax(1)
		_ = bar.Add(1)
		return stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
			Split: split, Label: parts[1], FileName: parts[2], Content: data}}})
	})
}
