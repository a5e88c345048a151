package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

func (p *program) datasetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Create, import, upload, inspect, snapshot and delete datasets",
		Long: `Datasets are labelled images laid out split/Label/file (train, validation, test).
Every image is validated on the way in; identical bytes are stored once.`,
	}
	cmd.AddCommand(p.datasetCreateCmd(), p.datasetListCmd(), p.datasetImportCmd(), p.datasetUploadCmd(),
		p.datasetStatsCmd(), p.datasetSnapshotCmd(), p.datasetSnapshotsCmd(), p.datasetRemoveCmd())
	return cmd
}

// withDataset runs fn with a Dataset client within the command's bound.
func (p *program) withDataset(cmd *cobra.Command, fn func(context.Context, datasetpb.DatasetServiceClient) error) error {
	return p.conn.call(cmd.Context(), longTimeout, func(ctx context.Context, conn *grpc.ClientConn) error {
		return fn(ctx, datasetpb.NewDatasetServiceClient(conn))
	})
}

func (p *program) datasetCreateCmd() *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an empty dataset",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
				resp, err := c.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: args[0], Description: desc})
				if err != nil {
					return err
				}
				fmt.Fprintf(p.env.Stdout, "created dataset %s\n", resp.GetDataset().GetName())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "free text shown in the UI")
	return cmd
}

func (p *program) datasetListCmd() *cobra.Command {
	var split, label string
	var limit int
	cmd := &cobra.Command{
		Use:     "ls [NAME]",
		Aliases: []string{"list"},
		Short:   "List datasets, or the images of one",
		Args:    rangeArgs(0, 1),
	}
	out := addOutputFlag(cmd)
	cmd.Flags().StringVar(&split, "split", "", "only this split: train, validation or test")
	cmd.Flags().StringVar(&label, "label", "", "only this label")
	cmd.Flags().IntVar(&limit, "limit", 50, "images to list")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		sp, err := parseSplit(split)
		if err != nil {
			return usagef("--split: %v", err)
		}
		return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
			if len(args) == 0 {
				return datasetList(ctx, c, *out, p.env.Stdout)
			}
			return imageList(ctx, c, args[0], sp, label, limit, *out, p.env.Stdout)
		})
	}
	return cmd
}

func (p *program) datasetImportCmd() *cobra.Command {
	var bucket, prefix string
	var show int
	var quiet bool
	cmd := &cobra.Command{
		Use:   "import NAME PATH | NAME --bucket B [--prefix P]",
		Short: "Import a folder on the server, or a bucket prefix of its S3 store",
		Long: `Imports a tree laid out split/Label/file (train/Cat/1.jpg) that the server can read:
a folder under one of its dataset.import-roots, or a prefix of a bucket of its S3 store.
For a folder on this machine, use shoal dataset upload.`,
		Args: rangeArgs(1, 2),
	}
	cmd.Flags().StringVar(&bucket, "bucket", "", "import from this bucket of the server's S3 store instead of a server folder")
	cmd.Flags().StringVar(&prefix, "prefix", "", "key prefix of the tree in --bucket")
	cmd.Flags().IntVar(&show, "show-rejections", 20, "rejected files to print (the counts cover all)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req := &datasetpb.ImportImagesRequest{Dataset: args[0]}
		switch {
		case bucket != "" && len(args) == 1:
			req.Source = &datasetpb.ImportImagesRequest_ObjectStore{ObjectStore: &datasetpb.ObjectStoreSource{Bucket: bucket, Prefix: prefix}}
		case bucket == "" && len(args) == 2:
			req.Source = &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: args[1]}}
		default:
			return usagef("give NAME PATH, or NAME --bucket B [--prefix P]")
		}
		return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
			return p.importImages(ctx, c, req, show, quiet)
		})
	}
	return cmd
}

func (p *program) datasetUploadCmd() *cobra.Command {
	var show int
	var quiet bool
	var split string
	var testFraction float64
	cmd := &cobra.Command{
		Use:   "upload NAME PATH...",
		Short: "Upload folders or archives from this machine",
		Long: `Uploads folders laid out split/Label/file (train/Cat/1.jpg, test/Dog/7.png), or
.zip/.tar/.tar.gz archives laid out the same way.

A folder laid out Label/file (Cat/1.jpg) takes --split: every file goes to that
split, and --test-fraction F moves a share F of them to the test split instead,
chosen by a hash of each file's path, so a re-run puts every file where it went before.`,
		Args: rangeArgs(2, -1),
	}
	cmd.Flags().IntVar(&show, "show-rejections", 20, "rejected files to print (the counts cover all)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	cmd.Flags().StringVar(&split, "split", "", "the folders are laid out Label/file: put their images in this split (train, validation or test)")
	cmd.Flags().Float64Var(&testFraction, "test-fraction", 0, "with --split: the share of the images, in [0, 1), that goes to the test split instead")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := newLayout(split, testFraction)
		if err != nil {
			return err
		}
		return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
			return p.upload(ctx, c, args[0], args[1:], l, show, quiet)
		})
	}
	return cmd
}

func (p *program) datasetStatsCmd() *cobra.Command {
	var snapshot int64
	cmd := &cobra.Command{
		Use:   "stats NAME",
		Short: "Image counts per split and label, and image sizes",
		Args:  exactArgs(1),
	}
	out := addOutputFlag(cmd)
	cmd.Flags().Int64Var(&snapshot, "snapshot", 0, "stats of this snapshot version instead of the current images")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
			resp, err := c.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: args[0], SnapshotVersion: snapshot})
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, resp)
			}
			return printStats(p.env.Stdout, resp)
		})
	}
	return cmd
}

func (p *program) datasetSnapshotCmd() *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use:   "snapshot NAME",
		Short: "Freeze the dataset's membership as a new numbered snapshot",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
				resp, err := c.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: args[0], Description: desc})
				if err != nil {
					return err
				}
				s := resp.GetSnapshot()
				fmt.Fprintf(p.env.Stdout, "created %s snapshot %d: %d images, manifest sha256:%s\n", s.GetDataset(), s.GetVersion(), s.GetImageCount(), s.GetManifestSha256())
				return printCounts(p.env.Stdout, s.GetCounts())
			})
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "free text, e.g. what changed")
	return cmd
}

func (p *program) datasetSnapshotsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshots NAME",
		Short: "List a dataset's snapshots",
		Args:  exactArgs(1),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
			return snapshotList(ctx, c, args[0], *out, p.env.Stdout)
		})
	}
	return cmd
}

func (p *program) datasetRemoveCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a dataset, its snapshots and the blobs no other dataset uses",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := p.env.confirm(yes, fmt.Sprintf("delete dataset %q with its images and snapshots", args[0])); err != nil {
				return err
			}
			return p.withDataset(cmd, func(ctx context.Context, c datasetpb.DatasetServiceClient) error {
				resp, err := c.DeleteDataset(ctx, &datasetpb.DeleteDatasetRequest{Name: args[0]})
				if err != nil {
					return err
				}
				fmt.Fprintf(p.env.Stdout, "deleted dataset %s: %d images, %d blobs no other dataset used\n", args[0], resp.GetImagesDeleted(), resp.GetBlobsDeleted())
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
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

func datasetList(ctx context.Context, c datasetpb.DatasetServiceClient, o output, out io.Writer) error {
	all := &datasetpb.ListDatasetsResponse{}
	for tok := ""; ; {
		resp, err := c.ListDatasets(ctx, &datasetpb.ListDatasetsRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			return err
		}
		all.Datasets = append(all.Datasets, resp.GetDatasets()...)
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if o.structured() {
		return o.print(out, all)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGES\tLABELS\tSNAPSHOTS\tUPDATED")
	for _, d := range all.GetDatasets() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", d.GetName(), d.GetImageCount(), len(d.GetLabels()), d.GetSnapshotCount(),
			formatTime(d.GetUpdateTime().AsTime()))
	}
	return tw.Flush()
}

func imageList(ctx context.Context, c datasetpb.DatasetServiceClient, name string, split datasetpb.Split, label string, limit int, o output, out io.Writer) error {
	all := &datasetpb.ListImagesResponse{}
	for tok := ""; len(all.Images) < limit; {
		resp, err := c.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: name, Split: split, Label: label,
			PageSize: int32(min(limit-len(all.Images), 1000)), PageToken: tok})
		if err != nil {
			return err
		}
		all.TotalSize = resp.GetTotalSize()
		all.Images = append(all.Images, resp.GetImages()...)
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if o.structured() {
		return o.print(out, all)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSPLIT\tLABEL\tFILE\tSIZE\tFORMAT\tSHA256")
	for _, img := range all.GetImages() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dx%d\t%s\t%s\n", img.GetId(), splitName(img.GetSplit()), printable(img.GetLabel()), printable(img.GetFileName()),
			img.GetWidth(), img.GetHeight(), strings.ToLower(strings.TrimPrefix(img.GetFormat().String(), "IMAGE_FORMAT_")), short(img.GetSha256()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d of %d images\n", len(all.GetImages()), all.GetTotalSize())
	return nil
}

func printStats(out io.Writer, resp *datasetpb.GetDatasetStatsResponse) error {
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

func snapshotList(ctx context.Context, c datasetpb.DatasetServiceClient, name string, o output, out io.Writer) error {
	all := &datasetpb.ListSnapshotsResponse{}
	for tok := ""; ; {
		resp, err := c.ListSnapshots(ctx, &datasetpb.ListSnapshotsRequest{Dataset: name, PageSize: 1000, PageToken: tok})
		if err != nil {
			return err
		}
		all.Snapshots = append(all.Snapshots, resp.GetSnapshots()...)
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if o.structured() {
		return o.print(out, all)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tIMAGES\tCREATED\tMANIFEST\tDESCRIPTION")
	for _, s := range all.GetSnapshots() {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", s.GetVersion(), s.GetImageCount(),
			formatTime(s.GetCreateTime().AsTime()), short(s.GetManifestSha256()), printable(s.GetDescription()))
	}
	return tw.Flush()
}

// short is a hash's first 12 characters, as git shows commits.
func short(sha string) string { return sha[:min(len(sha), 12)] }

// rejections prints the first few rejected files and counts the rest.
type rejections struct {
	out   io.Writer
	show  int
	count int
}

func (r *rejections) add(f *datasetpb.FileRejection) {
	r.count++
	if r.count <= r.show {
		fmt.Fprintf(r.out, "rejected %s: %s\n", printable(f.GetPath()), printable(f.GetReason()))
	}
}

func (r *rejections) summary(c *datasetpb.ImportCounts) {
	if hidden := r.count - r.show; hidden > 0 {
		fmt.Fprintf(r.out, "... and %d more (see --show-rejections)\n", hidden)
	}
	fmt.Fprintf(r.out, "seen %d: added %d, duplicates %d, conflicts %d, rejected %d\n",
		c.GetSeen(), c.GetAdded(), c.GetDuplicates(), c.GetConflicts(), c.GetRejected())
}

// importImages follows a server-side import: the meter counts the files the
// server has examined out of those it has found so far.
func (p *program) importImages(ctx context.Context, c datasetpb.DatasetServiceClient, req *datasetpb.ImportImagesRequest, show int, quiet bool) error {
	stream, err := c.ImportImages(ctx, req)
	if err != nil {
		return err
	}
	m := newMeter(p.env.Stderr, p.env.StderrTerminal, quiet, "importing", "images")
	rej := &rejections{out: p.env.Stdout, show: show}
	for {
		msg, err := stream.Recv()
		if err != nil {
			m.stop()
			if errors.Is(err, io.EOF) {
				return errors.New("import: the server ended the stream without a result")
			}
			return err
		}
		switch ev := msg.GetEvent().(type) {
		case *datasetpb.ImportImagesResponse_Progress:
			m.total = ev.Progress.GetTotal()
			m.set(ev.Progress.GetCounts().GetSeen())
		case *datasetpb.ImportImagesResponse_Rejection:
			m.clear() // a rejection's line must not land in the middle of the bar
			rej.add(ev.Rejection)
		case *datasetpb.ImportImagesResponse_Done:
			m.finish()
			rej.summary(ev.Done)
			return nil
		}
	}
}
