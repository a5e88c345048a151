package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

// uploadEvents collects an upload's rejections for its one response.
type uploadEvents struct{ rejections []*datasetpb.FileRejection }

func (u *uploadEvents) progress(*datasetpb.ImportProgress) error { return nil }
func (u *uploadEvents) rejection(r *datasetpb.FileRejection) error {
	u.rejections = append(u.rejections, r)
	return nil
}

// UploadImages imports what the client streams after a header naming the
// dataset: files one by one, or one archive, spooled to a temporary file.
func (h *handler) UploadImages(stream datasetpb.DatasetService_UploadImagesServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "empty upload: send a header first")
	}
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return status.Error(codes.InvalidArgument, "the first message of an upload must be the header naming the dataset")
	}
	ds, err := h.dataset(ctx, hdr.GetDataset())
	if err != nil {
		return err
	}
	next, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return stream.SendAndClose(&datasetpb.UploadImagesResponse{Counts: &datasetpb.ImportCounts{}})
	}
	if err != nil {
		return err
	}
	var src source
	switch {
	case next.GetFile() != nil:
		src = &uploadSource{stream: stream, first: next.GetFile()}
	case next.GetArchiveChunk() != nil:
		s, cleanup, err := h.spoolArchive(stream, next.GetArchiveChunk())
		if err != nil {
			return err
		}
		defer cleanup()
		src = s
	default:
		return status.Error(codes.InvalidArgument, "after the header, send files or archive chunks")
	}
	ev := &uploadEvents{}
	counts, err := h.svc.runImport(ctx, ds, src, ev)
	if err != nil {
		return h.importFailed(ds, counts, err)
	}
	return stream.SendAndClose(&datasetpb.UploadImagesResponse{Counts: counts, Rejections: ev.rejections})
}

// uploadSource is a stream of individual files.
type uploadSource struct {
	stream datasetpb.DatasetService_UploadImagesServer
	first  *datasetpb.UploadFile
}

func (u *uploadSource) walk(ctx context.Context, emit func(entry) error, reject func(string, string) error) error {
	f := u.first
	for i := 1; ; i++ {
		name := filepath.Base(strings.ReplaceAll(f.GetFileName(), "\\", "/"))
		if f.GetFileName() == "" {
			name = fmt.Sprintf("file-%d", i)
		}
		p := splitDir(f.GetSplit()) + "/" + f.GetLabel() + "/" + name
		r := checkLabel(f.GetLabel())
		if r == "" {
			r = checkFileName(name)
		}
		switch {
		case f.GetSplit() == datasetpb.Split_SPLIT_UNSPECIFIED || datasetpb.Split_name[int32(f.GetSplit())] == "":
			if err := reject(name, "split is required: train, validation or test"); err != nil {
				return err
			}
		case r != "":
			if err := reject(p, r); err != nil {
				return err
			}
		default:
			if err := emit(entry{path: p, split: f.GetSplit(), label: f.GetLabel(), name: name, size: int64(len(f.GetContent())), data: f.GetContent()}); err != nil {
				return err
			}
		}
		msg, err := u.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if f = msg.GetFile(); f == nil {
			return status.Error(codes.InvalidArgument, "an upload sends either files or one archive, not both, and one header")
		}
	}
}

// spoolArchive writes the archive's chunks to a temporary file (archives
// need random access, and may be larger than memory) and opens it.
func (h *handler) spoolArchive(stream datasetpb.DatasetService_UploadImagesServer, first *datasetpb.ArchiveChunk) (source, func(), error) {
	name := first.GetFileName()
	if name == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "the first archive chunk must carry the archive's fileName (.zip, .tar, .tar.gz or .tgz)")
	}
	f, err := os.CreateTemp("", "shoal-upload-*")
	if err != nil {
		return nil, nil, fmt.Errorf("spool archive: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	size := int64(0)
	chunk := first
	for {
		size += int64(len(chunk.GetData()))
		if size > h.svc.cfg.MaxArchiveBytes {
			cleanup()
			return nil, nil, status.Errorf(codes.ResourceExhausted, "archive is larger than the limit of %d bytes (dataset.max-archive-bytes)", h.svc.cfg.MaxArchiveBytes)
		}
		if _, err := f.Write(chunk.GetData()); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("spool archive: %w", err)
		}
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		if chunk = msg.GetArchiveChunk(); chunk == nil {
			cleanup()
			return nil, nil, status.Error(codes.InvalidArgument, "an upload sends either files or one archive, not both, and one header")
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("spool archive: %w", err)
	}
	src, closeSrc, err := openArchive(f, size, name, h.svc.cfg)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return src, func() { _ = closeSrc(); cleanup() }, nil
}
