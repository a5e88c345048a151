// Package cli holds the shoal binary's client subcommands, which talk gRPC
// to a running server.
package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

const modelsUsage = `Usage: shoal models <command> [flags] [args]

Commands:
  ls [MODEL]                     list models, or the versions of MODEL
  show MODEL [VERSION|ALIAS]     show a model, or one version with its metrics and lineage
  promote MODEL VERSION          point an alias (--alias, default production) at VERSION
  upload [flags] FILE.onnx       upload an ONNX model as a new version (see shoal models upload -h)
  rm MODEL [VERSION]             delete a version, or a model that has no versions left

Every command takes --addr (default localhost:9090), the gRPC address of a Shoal server
running the registry, and --timeout.
`

// uploadChunk is the size of each CreateVersion message.
const uploadChunk = 1 << 20

// Models runs `shoal models ...`.
func Models(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, modelsUsage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("shoal models "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:9090", "gRPC address of the registry")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole command")
	var run func(context.Context, registrypb.RegistryServiceClient, []string) error
	switch cmd {
	case "ls", "list":
		run = func(ctx context.Context, c registrypb.RegistryServiceClient, pos []string) error {
			return modelsList(ctx, c, pos, stdout)
		}
	case "show":
		run = func(ctx context.Context, c registrypb.RegistryServiceClient, pos []string) error {
			return modelsShow(ctx, c, pos, stdout)
		}
	case "promote":
		alias := fs.String("alias", "production", "alias to point at the version")
		run = func(ctx context.Context, c registrypb.RegistryServiceClient, pos []string) error {
			return modelsPromote(ctx, c, pos, *alias, stdout)
		}
	case "upload":
		u := registerUploadFlags(fs)
		run = func(ctx context.Context, c registrypb.RegistryServiceClient, pos []string) error {
			return u.run(ctx, c, pos, stdout)
		}
	case "rm", "delete":
		run = func(ctx context.Context, c registrypb.RegistryServiceClient, pos []string) error {
			return modelsRemove(ctx, c, pos, stdout)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, modelsUsage)
		return nil
	default:
		fmt.Fprint(stderr, modelsUsage)
		return fmt.Errorf("models: unknown command %q", cmd)
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	return call(ctx, *addr, *timeout, func(ctx context.Context, conn *grpc.ClientConn) error {
		return run(ctx, registrypb.NewRegistryServiceClient(conn), pos)
	})
}

// call dials addr and runs fn within timeout; an error the server answered
// comes back as an rpcError.
func call(ctx context.Context, addr string, timeout time.Duration, fn func(context.Context, *grpc.ClientConn) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(addr)
	if err != nil {
		return fmt.Errorf("--addr=%q: %w", addr, err)
	}
	defer conn.Close()
	if err := fn(ctx, conn); err != nil {
		if st, ok := status.FromError(err); ok {
			return rpcError{st}
		}
		return err
	}
	return nil
}

// dial makes the commands' client connection to a Shoal server.
func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
}

// rpcError prints a server's answer as "NotFound: model "x" not found"
// rather than gRPC's "rpc error: code = ... desc = ...", and keeps the
// status for callers that check the code.
type rpcError struct{ st *status.Status }

func (e rpcError) Error() string              { return e.st.Code().String() + ": " + e.st.Message() }
func (e rpcError) GRPCStatus() *status.Status { return e.st }

// parseInterleaved parses flags wherever they appear among the positional
// arguments (`promote fish 3 --alias staging`), which flag.Parse alone
// stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// wantArgs checks the number of positional arguments; usage is the
// command's synopsis after "shoal ".
func wantArgs(pos []string, minN, maxN int, usage string) error {
	if len(pos) < minN || len(pos) > maxN {
		return fmt.Errorf("usage: shoal %s", usage)
	}
	return nil
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("version %q: want a positive number", s)
	}
	return v, nil
}

func modelsList(ctx context.Context, c registrypb.RegistryServiceClient, pos []string, out io.Writer) error {
	if err := wantArgs(pos, 0, 1, "models ls [MODEL]"); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(pos) == 0 {
		fmt.Fprintln(w, "NAME\tLATEST\tALIASES\tLABELS\tCREATED")
		for token := ""; ; {
			resp, err := c.ListModels(ctx, &registrypb.ListModelsRequest{PageSize: 200, PageToken: token})
			if err != nil {
				return err
			}
			for _, m := range resp.GetModels() {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", m.GetName(), m.GetLatestVersion(), formatAliases(m.GetAliases()),
					len(m.GetLabels()), formatTime(m.GetCreateTime().AsTime()))
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		return w.Flush()
	}
	fmt.Fprintln(w, "VERSION\tALIASES\tTEST_ACC\tVAL_ACC\tARCHITECTURE\tCREATOR\tSIZE\tCREATED")
	for token := ""; ; {
		resp, err := c.ListVersions(ctx, &registrypb.ListVersionsRequest{Model: pos[0], PageSize: 200, PageToken: token})
		if err != nil {
			return err
		}
		for _, v := range resp.GetVersions() {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.GetVersion(), dash(strings.Join(v.GetAliases(), ",")),
				formatMetric(v.GetMetrics().GetTestAccuracy()), formatMetric(v.GetMetrics().GetValAccuracy()),
				dash(v.GetArchitecture()), dash(v.GetCreator()), formatBytes(v.GetArtifact().GetSizeBytes()),
				formatTime(v.GetCreateTime().AsTime()))
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return w.Flush()
}

func modelsShow(ctx context.Context, c registrypb.RegistryServiceClient, pos []string, out io.Writer) error {
	if err := wantArgs(pos, 1, 2, "models show MODEL [VERSION|ALIAS]"); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(pos) == 1 {
		resp, err := c.GetModel(ctx, &registrypb.GetModelRequest{Name: pos[0]})
		if err != nil {
			return err
		}
		m := resp.GetModel()
		fmt.Fprintf(w, "model:\t%s\n", m.GetName())
		fmt.Fprintf(w, "description:\t%s\n", dash(m.GetDescription()))
		fmt.Fprintf(w, "labels:\t%s\n", strings.Join(m.GetLabels(), ", "))
		fmt.Fprintf(w, "latest version:\t%d\n", m.GetLatestVersion())
		fmt.Fprintf(w, "aliases:\t%s\n", formatAliases(m.GetAliases()))
		fmt.Fprintf(w, "created:\t%s\n", formatTime(m.GetCreateTime().AsTime()))
		return w.Flush()
	}
	req := &registrypb.GetVersionRequest{Model: pos[0]}
	if n, err := strconv.ParseInt(pos[1], 10, 64); err == nil {
		req.Version = n
	} else {
		req.Alias = pos[1]
	}
	resp, err := c.GetVersion(ctx, req)
	if err != nil {
		return err
	}
	v := resp.GetVersion()
	in := v.GetInputSpec()
	met := v.GetMetrics()
	lin := v.GetLineage()
	rows := [][2]string{
		{"model", v.GetModel()},
		{"version", strconv.FormatInt(v.GetVersion(), 10)},
		{"aliases", dash(strings.Join(v.GetAliases(), ", "))},
		{"labels", strings.Join(v.GetLabels(), ", ")},
		{"architecture", dash(v.GetArchitecture())},
		{"creator", dash(v.GetCreator())},
		{"description", dash(v.GetDescription())},
		{"created", formatTime(v.GetCreateTime().AsTime())},
		{"artifact", fmt.Sprintf("sha256:%s (%s)", v.GetArtifact().GetSha256(), formatBytes(v.GetArtifact().GetSizeBytes()))},
		{"input", fmt.Sprintf("%s, %d channels, %d×%d, resize %s, mean %v, std %v",
			strings.TrimPrefix(in.GetLayout().String(), "TENSOR_LAYOUT_"), in.GetChannels(), in.GetHeight(), in.GetWidth(),
			strings.ToLower(strings.TrimPrefix(in.GetResizeMode().String(), "RESIZE_MODE_")), in.GetMean(), in.GetStd())},
		{"tensors", fmt.Sprintf("%s -> %s%s", in.GetInputName(), in.GetOutputName(),
			map[bool]string{true: " (probabilities)", false: " (logits)"}[in.GetOutputIsProbabilities()])},
		{"val accuracy / loss", formatMetric(met.GetValAccuracy()) + " / " + formatMetric(met.GetValLoss())},
		{"test accuracy / loss", formatMetric(met.GetTestAccuracy()) + " / " + formatMetric(met.GetTestLoss())},
	}
	if lin.GetDataset() != "" {
		rows = append(rows, [2]string{"dataset", fmt.Sprintf("%s (snapshot %d)", lin.GetDataset(), lin.GetSnapshotVersion())})
	}
	if lin.GetJobId() != "" {
		rows = append(rows, [2]string{"training job", lin.GetJobId()})
	}
	if p := lin.GetParent(); p.GetModel() != "" {
		rows = append(rows, [2]string{"parent", fmt.Sprintf("%s/%d", p.GetModel(), p.GetVersion())})
	}
	keys := make([]string, 0, len(v.GetHyperParameters()))
	for k := range v.GetHyperParameters() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		rows = append(rows, [2]string{"hyper-parameter " + k, v.GetHyperParameters()[k]})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
	}
	if pc := met.GetPerClass(); len(pc) > 0 {
		fmt.Fprintln(w, "\nCLASS\tPRECISION\tRECALL\tF1\tSUPPORT")
		for _, c := range pc {
			fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.3f\t%d\n", c.GetLabel(), c.GetPrecision(), c.GetRecall(), c.GetF1(), c.GetSupport())
		}
	}
	return w.Flush()
}

func modelsPromote(ctx context.Context, c registrypb.RegistryServiceClient, pos []string, alias string, out io.Writer) error {
	if err := wantArgs(pos, 2, 2, "models promote MODEL VERSION [--alias production]"); err != nil {
		return err
	}
	v, err := parseVersion(pos[1])
	if err != nil {
		return err
	}
	resp, err := c.SetAlias(ctx, &registrypb.SetAliasRequest{Model: pos[0], Alias: alias, Version: v})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s@%s -> version %d\n", resp.GetAlias().GetModel(), resp.GetAlias().GetAlias(), resp.GetAlias().GetVersion())
	return nil
}

func modelsRemove(ctx context.Context, c registrypb.RegistryServiceClient, pos []string, out io.Writer) error {
	if err := wantArgs(pos, 1, 2, "models rm MODEL [VERSION]"); err != nil {
		return err
	}
	if len(pos) == 1 {
		if _, err := c.DeleteModel(ctx, &registrypb.DeleteModelRequest{Name: pos[0]}); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted model %s\n", pos[0])
		return nil
	}
	v, err := parseVersion(pos[1])
	if err != nil {
		return err
	}
	if _, err := c.DeleteVersion(ctx, &registrypb.DeleteVersionRequest{Model: pos[0], Version: v}); err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted %s version %d\n", pos[0], v)
	return nil
}

// uploadFlags are `shoal models upload`'s settings.
type uploadFlags struct {
	model, labels, description, architecture, creator string
	inputName, outputName, layout, resize, mean, std  string
	channels, size, height, width                     int
	probabilities                                     bool
}

func registerUploadFlags(fs *flag.FlagSet) *uploadFlags {
	u := &uploadFlags{}
	fs.StringVar(&u.model, "model", "", "model name (created when new)")
	fs.StringVar(&u.labels, "labels", "", `class names in the model's output order, comma-separated ("Catfish,Gold Fish"); may be left out for an existing model`)
	fs.IntVar(&u.channels, "channels", 3, "input channels: 1 or 3")
	fs.IntVar(&u.size, "size", 0, "input height and width in pixels")
	fs.IntVar(&u.height, "height", 0, "input height in pixels (overrides --size)")
	fs.IntVar(&u.width, "width", 0, "input width in pixels (overrides --size)")
	fs.StringVar(&u.mean, "mean", "", `per-channel mean after scaling to [0,1], comma-separated (e.g. "0.485,0.456,0.406")`)
	fs.StringVar(&u.std, "std", "", `per-channel standard deviation, comma-separated (e.g. "0.229,0.224,0.225")`)
	fs.StringVar(&u.layout, "layout", "nchw", "input layout: nchw or nhwc")
	fs.StringVar(&u.resize, "resize", "stretch", "resize mode: stretch, center-crop or letterbox")
	fs.StringVar(&u.inputName, "input-name", "", "the graph's input tensor; empty when it has one input")
	fs.StringVar(&u.outputName, "output-name", "", "the graph's output tensor; empty when it has one output")
	fs.BoolVar(&u.probabilities, "probabilities", false, "the output is already softmax probabilities")
	fs.StringVar(&u.architecture, "architecture", "", `architecture name, e.g. "resnet18"`)
	fs.StringVar(&u.description, "description", "", "free text")
	fs.StringVar(&u.creator, "creator", os.Getenv("USER"), "who uploads it")
	return u
}

func (u *uploadFlags) spec() (*registrypb.VersionSpec, error) {
	if u.model == "" {
		return nil, errors.New("--model is required")
	}
	h, w := u.size, u.size
	if u.height > 0 {
		h = u.height
	}
	if u.width > 0 {
		w = u.width
	}
	if h <= 0 || w <= 0 {
		return nil, errors.New("--size (or --height and --width) is required")
	}
	mean, err := parseFloats("--mean", u.mean)
	if err != nil {
		return nil, err
	}
	std, err := parseFloats("--std", u.std)
	if err != nil {
		return nil, err
	}
	in := &registrypb.InputSpec{
		Channels: int32(u.channels), Height: int32(h), Width: int32(w), Mean: mean, Std: std,
		InputName: u.inputName, OutputName: u.outputName, OutputIsProbabilities: u.probabilities,
	}
	switch strings.ToLower(u.layout) {
	case "nchw":
		in.Layout = registrypb.TensorLayout_TENSOR_LAYOUT_NCHW
	case "nhwc":
		in.Layout = registrypb.TensorLayout_TENSOR_LAYOUT_NHWC
	default:
		return nil, fmt.Errorf("--layout=%q: use nchw or nhwc", u.layout)
	}
	switch strings.ToLower(u.resize) {
	case "stretch":
		in.ResizeMode = registrypb.ResizeMode_RESIZE_MODE_STRETCH
	case "center-crop":
		in.ResizeMode = registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP
	case "letterbox":
		in.ResizeMode = registrypb.ResizeMode_RESIZE_MODE_LETTERBOX
	default:
		return nil, fmt.Errorf("--resize=%q: use stretch, center-crop or letterbox", u.resize)
	}
	var labels []string
	if u.labels != "" {
		for l := range strings.SplitSeq(u.labels, ",") {
			labels = append(labels, strings.TrimSpace(l))
		}
	}
	return &registrypb.VersionSpec{
		Model: u.model, Labels: labels, InputSpec: in, Architecture: u.architecture,
		Creator: u.creator, Description: u.description,
	}, nil
}

func parseFloats(flagName, s string) ([]float32, error) {
	if s == "" {
		return nil, nil
	}
	var out []float32
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", flagName, f)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

// run hashes the file, then streams it after the spec, so the server can
// check that what arrived is what was sent.
func (u *uploadFlags) run(ctx context.Context, c registrypb.RegistryServiceClient, pos []string, out io.Writer) error {
	if err := wantArgs(pos, 1, 1, "models upload --model NAME --labels A,B,... --size N [flags] FILE.onnx"); err != nil {
		return err
	}
	spec, err := u.spec()
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	spec.ArtifactSizeBytes, spec.ArtifactSha256 = size, hex.EncodeToString(h.Sum(nil))

	stream, err := c.CreateVersion(ctx)
	if err != nil {
		return err
	}
	sendErr := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: spec}})
	buf := make([]byte, uploadChunk)
	for sendErr == nil {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			sendErr = stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: buf[:n]}})
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", pos[0], err)
		}
	}
	// A send fails when the server has already answered (say, the spec was
	// refused); CloseAndRecv returns that answer.
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	v := resp.GetVersion()
	fmt.Fprintf(out, "created %s version %d (sha256:%s, %s)\n", v.GetModel(), v.GetVersion(), v.GetArtifact().GetSha256(), formatBytes(v.GetArtifact().GetSizeBytes()))
	return nil
}

func formatAliases(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for a := range m {
		names = append(names, a)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, a := range names {
		parts[i] = fmt.Sprintf("%s=%d", a, m[a])
	}
	return strings.Join(parts, ",")
}

func formatMetric(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
