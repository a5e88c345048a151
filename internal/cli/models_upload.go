package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

func (p *program) modelsUploadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upload --model NAME --size N [flags] FILE.onnx",
		Short: "Upload an ONNX model as a new version",
		Long: `Uploads an ONNX classifier as a new version of --model (created when new). The
Registry opens it in ONNX Runtime and refuses it unless its input matches the spec
given here and its output has one score per label.`,
		Args: exactArgs(1),
	}
	u := registerUploadFlags(cmd, p.env.LookupEnv)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		spec, err := u.spec()
		if err != nil {
			return UsageError(err)
		}
		return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
			return uploadVersion(ctx, c, spec, args[0], p.env.Stdout)
		})
	}
	return cmd
}

// uploadChunk is the size of each CreateVersion message.
const uploadChunk = 1 << 20

// uploadFlags are `shoal models upload`'s settings.
type uploadFlags struct {
	model, labels, description, architecture, creator string
	inputName, outputName, layout, resize, mean, std  string
	jpegDecode                                        string
	channels, size, height, width                     int
	probabilities                                     bool
}

func registerUploadFlags(cmd *cobra.Command, lookupEnv func(string) (string, bool)) *uploadFlags {
	u := &uploadFlags{}
	fs := cmd.Flags()
	user, _ := lookupEnv("USER")
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
	fs.StringVar(&u.jpegDecode, "jpeg-decode", "full", "how JPEGs are decoded before resizing: full, or dct-scaled (at 1/2, 1/4 or 1/8 scale when the input is that much smaller; luma alone for 1 channel)")
	fs.StringVar(&u.inputName, "input-name", "", "the graph's input tensor; empty when it has one input")
	fs.StringVar(&u.outputName, "output-name", "", "the graph's output tensor; empty when it has one output")
	fs.BoolVar(&u.probabilities, "probabilities", false, "the output is already softmax probabilities")
	fs.StringVar(&u.architecture, "architecture", "", `architecture name, e.g. "resnet18"`)
	fs.StringVar(&u.description, "description", "", "free text")
	fs.StringVar(&u.creator, "creator", user, "who uploads it")
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
	switch strings.ToLower(u.jpegDecode) {
	case "full":
		in.JpegDecode = registrypb.JpegDecode_JPEG_DECODE_FULL
	case "dct-scaled":
		in.JpegDecode = registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED
	default:
		return nil, fmt.Errorf("--jpeg-decode=%q: use full or dct-scaled", u.jpegDecode)
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
func uploadVersion(ctx context.Context, c registrypb.RegistryServiceClient, spec *registrypb.VersionSpec, file string, out io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
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
			return fmt.Errorf("read %s: %w", file, err)
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
