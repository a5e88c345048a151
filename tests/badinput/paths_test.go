package badinput

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/badinput"
	"github.com/shoalml/shoal/internal/cli"
)

// result is what a path answered, in one shape for every path.
type result struct {
	// code and msg are the call's status (OK on success); REST answers are
	// read back into them from the HTTP status and error body.
	code codes.Code
	msg  string
	// httpStatus is a REST answer's status, 0 on gRPC and CLI paths.
	httpStatus int
	// exit is the CLI's exit code (-1 on other paths).
	exit int
	// rejections are the files an import refused, by path and reason; the
	// CLI's are read from its output.
	rejections []string
	counts     *datasetpb.ImportCounts
	// output is what the CLI printed.
	output string
	// probs are a prediction's probabilities, by class index.
	probs []float64
}

func grpcResult(err error) result {
	st := status.Convert(err)
	return result{code: st.Code(), msg: st.Message(), exit: -1}
}

// caseInput is one kind on one path: where it goes and what else goes with it.
type caseInput struct {
	k       badinput.Kind
	dataset string
	dir     string // a folder of the case's own
	// companion is a good image sent beside a single-file kind on the
	// paths that carry more than one file, so that a refusal of one file
	// visibly leaves the rest of the import going.
	companion []byte
}

// entries is the case's tree: the kind's, and the companion beside a
// single file.
func (c caseInput) entries() []badinput.Entry {
	e := c.k.Entries()
	if c.k.File != nil {
		e = append([]badinput.Entry{{Path: "train/Cat/companion.png", Data: c.companion}}, e...)
	}
	return e
}

type driver func(ctx context.Context, s *server, c caseInput) (result, error)

var drivers = map[badinput.Path]driver{
	badinput.ServerFolder:  serverFolder,
	badinput.BucketPrefix:  bucketPrefix,
	badinput.ClientFolder:  clientFolder,
	badinput.ClientArchive: clientArchive,
	badinput.RESTUpload:    restUpload,
	badinput.ConsoleUpload: consoleUpload,
	badinput.PredictForm:   predictForm,
	badinput.PredictGRPC:   predictGRPC,
	badinput.PredictREST:   predictREST,
	badinput.InferTyped:    inferTyped,
	badinput.InferRaw:      inferRaw,
	badinput.InferREST:     inferREST,
	badinput.ModelCLI:      modelCLI,
	badinput.ModelREST:     modelREST,
}

// importEvents collects an ImportImages stream's rejections and result.
func importEvents(stream datasetpb.DatasetService_ImportImagesClient) result {
	r := result{exit: -1}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.code, r.msg = codes.Internal, "the stream ended without a result"
				return r
			}
			st := status.Convert(err)
			r.code, r.msg = st.Code(), st.Message()
			return r
		}
		switch e := ev.GetEvent().(type) {
		case *datasetpb.ImportImagesResponse_Rejection:
			r.rejections = append(r.rejections, e.Rejection.GetPath()+": "+e.Rejection.GetReason())
		case *datasetpb.ImportImagesResponse_Done:
			r.counts = e.Done
			return r
		}
	}
}

func serverFolder(ctx context.Context, s *server, c caseInput) (result, error) {
	root := filepath.Join(s.importRoot, c.dataset)
	if err := badinput.WriteTree(root, c.entries()); err != nil {
		return result{}, err
	}
	stream, err := s.dataset.ImportImages(ctx, &datasetpb.ImportImagesRequest{
		Dataset: c.dataset, Source: &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: root}}})
	if err != nil {
		return grpcResult(err), nil
	}
	return importEvents(stream), nil
}

func bucketPrefix(ctx context.Context, s *server, c caseInput) (result, error) {
	for _, e := range c.entries() {
		if e.Type != badinput.Regular || e.Zeros > 0 {
			return result{}, fmt.Errorf("%s: a bucket holds only objects", e.Path)
		}
		if _, err := s.source.PutObject(ctx, s.sourceBucket, c.dataset+"/"+e.Path, bytes.NewReader(e.Data), int64(len(e.Data)), minio.PutObjectOptions{}); err != nil {
			return result{}, fmt.Errorf("put %q: %w", e.Path, err)
		}
	}
	stream, err := s.dataset.ImportImages(ctx, &datasetpb.ImportImagesRequest{
		Dataset: c.dataset, Source: &datasetpb.ImportImagesRequest_ObjectStore{ObjectStore: &datasetpb.ObjectStoreSource{Bucket: s.sourceBucket, Prefix: c.dataset}}})
	if err != nil {
		return grpcResult(err), nil
	}
	return importEvents(stream), nil
}

// runCLI runs the shoal command line in this process, as a user's shell
// would run the binary.
func runCLI(ctx context.Context, s *server, args ...string) result {
	var out, errOut bytes.Buffer
	args = append(args, "--addr", s.grpcAddr, "--token", s.token)
	err := cli.Run(ctx, args, cli.Env{Stdout: &out, Stderr: &errOut})
	r := result{exit: cli.ExitCode(err), output: out.String()}
	if err != nil {
		st, _ := status.FromError(err)
		r.code, r.msg = st.Code(), err.Error()
		if st.Code() == codes.OK { // not a status: a local error
			r.code = codes.Unknown
		}
	}
	for line := range strings.SplitSeq(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "rejected "); ok {
			r.rejections = append(r.rejections, rest)
		}
		if strings.HasPrefix(line, "skipped ") {
			r.rejections = append(r.rejections, line)
		}
	}
	return r
}

func clientFolder(ctx context.Context, s *server, c caseInput) (result, error) {
	root := filepath.Join(c.dir, "folder")
	if err := badinput.WriteTree(root, c.entries()); err != nil {
		return result{}, err
	}
	if len(c.entries()) == 0 {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return result{}, err
		}
	}
	return runCLI(ctx, s, "dataset", "upload", c.dataset, root, "--quiet"), nil
}

// packed is the case's input as one archive: the kind's own, or its tree
// (with the companion) packed.
func (c caseInput) packed() (string, []byte, error) {
	if c.k.Archive != nil {
		return c.k.Packed()
	}
	b, err := badinput.Pack(c.k.PackFormat(), c.entries())
	return c.k.Name + c.k.PackFormat(), b, err
}

func clientArchive(ctx context.Context, s *server, c caseInput) (result, error) {
	name, data, err := c.packed()
	if err != nil {
		return result{}, err
	}
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return result{}, err
	}
	return runCLI(ctx, s, "dataset", "upload", c.dataset, p, "--quiet"), nil
}

// jsonString writes s as a JSON string, keeping bytes that are not UTF-8
// as they are (json.Marshal would replace them): what a careless client
// sends.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteByte(s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// postJSON posts body with the admin token and reads the answer: 200 with
// its JSON, or the gateway's error ({"code", "message"}), the Open
// Inference Protocol's ({"error"}) or the HTTP server's (plain text).
func (s *server) postJSON(ctx context.Context, path, contentType string, body io.Reader, header map[string]string) (result, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.http+path, body)
	if err != nil {
		return result{}, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(s.authed(req))
	if err != nil {
		return result{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, nil, err
	}
	r := result{httpStatus: resp.StatusCode, exit: -1}
	if resp.StatusCode == http.StatusOK {
		return r, b, nil
	}
	var e struct {
		Code    *int    `json:"code"`
		Message string  `json:"message"`
		Error   *string `json:"error"`
	}
	switch {
	case json.Unmarshal(b, &e) == nil && e.Code != nil:
		r.code, r.msg = codes.Code(*e.Code), e.Message
	case e.Error != nil:
		r.code, r.msg = codeOfHTTP(resp.StatusCode), *e.Error
	default:
		r.code, r.msg = codeOfHTTP(resp.StatusCode), strings.TrimSpace(string(b))
	}
	return r, b, nil
}

// codeOfHTTP is the gRPC code whose HTTP status is code, for answers that
// carry no code of their own.
func codeOfHTTP(code int) codes.Code {
	switch code {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Unknown
}

// uploadAnswer reads UploadImages' REST answer.
func uploadAnswer(r result, body []byte) (result, error) {
	if r.httpStatus != http.StatusOK {
		return r, nil
	}
	var ok struct {
		Counts     *datasetpb.ImportCounts `json:"-"`
		RawCounts  map[string]int64        `json:"counts"`
		Rejections []struct {
			Path   string `json:"path"`
			Reason string `json:"reason"`
		} `json:"rejections"`
	}
	if err := json.Unmarshal(body, &ok); err != nil {
		return r, fmt.Errorf("200 with %q: %w", body, err)
	}
	r.counts = &datasetpb.ImportCounts{Seen: ok.RawCounts["seen"], Added: ok.RawCounts["added"], Rejected: ok.RawCounts["rejected"]}
	for _, rej := range ok.Rejections {
		r.rejections = append(r.rejections, rej.Path+": "+rej.Reason)
	}
	return r, nil
}

// archiveChunks writes an archive as UploadImages' chunk messages of
// chunkBytes each, the first naming it, as the web console does
// (frontend/src/api/upload.ts): an empty archive is one empty chunk.
func archiveChunks(b *strings.Builder, name string, data []byte, chunkBytes int) {
	for off := 0; off < len(data) || off == 0; off += chunkBytes {
		piece := base64.StdEncoding.EncodeToString(data[off:min(off+chunkBytes, len(data))])
		if off == 0 {
			fmt.Fprintf(b, `{"archiveChunk":{"fileName":%s,"data":"%s"}}`+"\n", jsonString(name), piece)
		} else {
			fmt.Fprintf(b, `{"archiveChunk":{"data":"%s"}}`+"\n", piece)
		}
		if len(data) == 0 {
			break
		}
	}
}

// restUpload is an API client's upload: a single file and its companion as
// file messages with their own split and label (the split by its short
// name, as the REST API allows), anything else as archive chunks.
func restUpload(ctx context.Context, s *server, c caseInput) (result, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `{"header":{"dataset":%q}}`+"\n", c.dataset)
	if f := c.k.File; f != nil {
		for _, m := range []badinput.File{{Name: "companion.png", Label: "Cat", Data: c.companion}, *f} {
			fmt.Fprintf(&b, `{"file":{"split":"train","label":%s,"fileName":%s,"content":"%s"}}`+"\n",
				jsonString(m.Label), jsonString(m.Name), base64.StdEncoding.EncodeToString(m.Data))
		}
	} else {
		name, data, err := c.packed()
		if err != nil {
			return result{}, err
		}
		archiveChunks(&b, name, data, 1<<20)
	}
	r, body, err := s.postJSON(ctx, "/v1/images:upload", "application/json", strings.NewReader(b.String()), nil)
	if err != nil {
		return result{}, err
	}
	return uploadAnswer(r, body)
}

// consoleUpload sends what the web console's upload form sends
// (frontend/src/api/upload.ts, uploadBody) on the route it uses, POST
// /v1/images:upload: the browser adds nothing the server sees but the
// bytes, so the route with the console's messages is the console's path.
// Single images go in "images" mode (one label for all, the split by its
// enum name); anything else in "archive" mode, in 1 MiB chunks.
func consoleUpload(ctx context.Context, s *server, c caseInput) (result, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `{"header":{"dataset":%q}}`+"\n", c.dataset)
	if f := c.k.File; f != nil {
		fmt.Fprintf(&b, `{"file":{"split":"SPLIT_TRAIN","label":%s,"fileName":%s,"content":"%s"}}`+"\n",
			jsonString(f.Label), jsonString(f.Name), base64.StdEncoding.EncodeToString(f.Data))
	} else {
		name, data, err := c.packed()
		if err != nil {
			return result{}, err
		}
		archiveChunks(&b, name, data, 1<<20)
	}
	r, body, err := s.postJSON(ctx, "/v1/images:upload", "application/json", strings.NewReader(b.String()), nil)
	if err != nil {
		return result{}, err
	}
	return uploadAnswer(r, body)
}
