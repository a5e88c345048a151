package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// CreateVersion receives the spec, then the artifact into a temporary file
// (bounded, hashed on the way), checks it in ONNX Runtime against the spec
// and only then stores blob and rows. Nothing is stored when any step
// fails, including a client that goes away midway.
func (h *handler) CreateVersion(stream grpc.ClientStreamingServer[registrypb.CreateVersionRequest, registrypb.CreateVersionResponse]) error {
	ctx := stream.Context()
	rt, err := h.svc.runtime()
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "this registry cannot check ONNX models, so it accepts no uploads: %v", err)
	}
	first, err := stream.Recv()
	if err == io.EOF {
		return status.Error(codes.InvalidArgument, "empty upload: send the version spec first, then the ONNX file in chunks")
	}
	if err != nil {
		return err
	}
	spec := first.GetSpec()
	if spec == nil {
		return status.Error(codes.InvalidArgument, "the first message of an upload must be the version spec")
	}
	nv, err := h.svc.checkSpec(ctx, spec)
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(h.svc.cfg.UploadDir, uploadPrefix+"*"+uploadSuffix)
	if err != nil {
		return fmt.Errorf("upload file: %w", err)
	}
	defer os.Remove(tmp.Name())
	nv.path = tmp.Name()
	nv.size, nv.sha, err = h.svc.receive(stream, tmp, spec)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("upload file: %w", cerr)
	}
	if err != nil {
		return err
	}

	// Before ONNX Runtime opens the file: it would follow the paths of
	// external tensors, and no path from a user's file is ever opened.
	if err := onnxrt.CheckExternalDataFile(nv.path); err != nil {
		if errors.Is(err, onnxrt.ErrExternalData) || errors.Is(err, onnxrt.ErrInvalidModel) {
			return status.Errorf(codes.InvalidArgument, "the artifact is refused: %v", err)
		}
		return err
	}
	// In a child process: a file that crashes ONNX Runtime's parser ends
	// only the child.
	info, err := rt.InspectIsolated(ctx, nv.path, onnxrt.Isolation{Timeout: h.svc.cfg.InspectTimeout, MemoryBytes: h.svc.cfg.InspectMemoryBytes})
	if err != nil {
		switch {
		case errors.Is(err, onnxrt.ErrInvalidModel):
			return status.Errorf(codes.InvalidArgument, "the artifact is not an ONNX model that ONNX Runtime can load: %s", firstLine(err))
		case ctx.Err() != nil:
			return status.FromContextError(ctx.Err()).Err()
		}
		return err
	}
	if err := checkModelShapes(info, nv.input, len(nv.labels)); err != nil {
		return status.Errorf(codes.InvalidArgument, "the ONNX model does not match the spec: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	v, err := h.svc.createVersion(ctx, nv)
	if err != nil {
		return err
	}
	h.svc.deps.Log.Info("version created", "model", v.GetModel(), "version", v.GetVersion(),
		"sha256", v.GetArtifact().GetSha256(), "size", v.GetArtifact().GetSizeBytes(), "creator", v.GetCreator())
	return stream.SendAndClose(&registrypb.CreateVersionResponse{Version: v})
}

// checkSpec validates what can be checked before the artifact arrives, so
// that a bad spec fails fast instead of after a large upload.
func (s *Service) checkSpec(ctx context.Context, spec *registrypb.VersionSpec) (newVersion, error) {
	nv := newVersion{spec: spec, labels: spec.GetLabels()}
	m, err := findModel(s.deps.DB.WithContext(ctx), spec.GetModel())
	switch {
	case err == nil:
		have, err := decodeLabels(m.Labels)
		if err != nil {
			return nv, err
		}
		if len(nv.labels) == 0 {
			nv.labels = have // versions of an existing model may leave labels out
		}
		if err := checkLabels(nv.labels); err != nil {
			return nv, err
		}
		if !slices.Equal(have, nv.labels) {
			return nv, labelsDiffer(m.Name, have, nv.labels)
		}
	case status.Code(err) == codes.NotFound:
		if err := checkLabels(nv.labels); err != nil {
			return nv, err
		}
	default:
		return nv, err
	}
	if nv.input, err = normalizeInputSpec(spec.GetInputSpec()); err != nil {
		return nv, err
	}
	if n := spec.GetArtifactSizeBytes(); n > s.cfg.MaxArtifactBytes {
		return nv, tooLarge(n, s.cfg.MaxArtifactBytes)
	}
	return nv, nil
}

func tooLarge(n, limit int64) error {
	return status.Errorf(codes.ResourceExhausted, "the artifact is larger than this registry accepts (%d bytes > --registry.max-artifact-bytes=%d)", n, limit)
}

// receive copies the artifact chunks into w, bounded and hashed. A stream
// that ends with an error (the client cancelled, the connection broke)
// returns that error, and the caller stores nothing.
func (s *Service) receive(stream grpc.ClientStreamingServer[registrypb.CreateVersionRequest, registrypb.CreateVersionResponse], w io.Writer, spec *registrypb.VersionSpec) (int64, string, error) {
	hash := sha256.New()
	out := io.MultiWriter(w, hash)
	var n int64
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, "", err
		}
		if msg.GetSpec() != nil {
			return 0, "", status.Error(codes.InvalidArgument, "the spec was sent twice: send it once, first, then only chunks")
		}
		chunk := msg.GetChunk()
		n += int64(len(chunk))
		if n > s.cfg.MaxArtifactBytes {
			return 0, "", tooLarge(n, s.cfg.MaxArtifactBytes)
		}
		if want := spec.GetArtifactSizeBytes(); want > 0 && n > want {
			return 0, "", status.Errorf(codes.InvalidArgument, "received more than the %d bytes spec.artifactSizeBytes announced", want)
		}
		if _, err := out.Write(chunk); err != nil {
			return 0, "", fmt.Errorf("upload file: %w", err)
		}
	}
	if n == 0 {
		return 0, "", status.Error(codes.InvalidArgument, "the upload has no artifact: send the ONNX file in chunks after the spec")
	}
	if want := spec.GetArtifactSizeBytes(); want > 0 && n != want {
		return 0, "", status.Errorf(codes.InvalidArgument, "received %d bytes but spec.artifactSizeBytes says %d", n, want)
	}
	sum := hex.EncodeToString(hash.Sum(nil))
	if want := strings.ToLower(spec.GetArtifactSha256()); want != "" && want != sum {
		return 0, "", status.Errorf(codes.InvalidArgument, "the artifact's SHA-256 is %s but spec.artifactSha256 says %s: it was corrupted on the way", sum, want)
	}
	return n, sum, nil
}

// firstLine keeps ONNX Runtime's message short.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// chunkSize is the size of DownloadArtifact's messages.
const chunkSize = 256 << 10

func (h *handler) DownloadArtifact(req *registrypb.DownloadArtifactRequest, stream grpc.ServerStreamingServer[registrypb.DownloadArtifactResponse]) error {
	ctx := stream.Context()
	_, v, err := resolveVersion(h.db(ctx), req.GetModel(), "", req.GetVersion())
	if err != nil {
		return err
	}
	rc, err := h.svc.openArtifact(ctx, v.ArtifactSHA256)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, chunkSize)
	first := true
	var sent int64
	for {
		n, err := io.ReadFull(rc, buf)
		if n > 0 || first {
			msg := &registrypb.DownloadArtifactResponse{Chunk: buf[:n]}
			if first {
				msg.SizeBytes, msg.Sha256 = v.ArtifactSize, v.ArtifactSHA256
				first = false
			}
			if serr := stream.Send(msg); serr != nil {
				return serr
			}
			sent += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read artifact: %w", err)
		}
	}
	if sent != v.ArtifactSize {
		return fmt.Errorf("artifact %s: read %d bytes, recorded size %d", v.ArtifactSHA256, sent, v.ArtifactSize)
	}
	return nil
}
