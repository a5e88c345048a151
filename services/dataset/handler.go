package dataset

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// handler is the service's RPC surface.
type handler struct {
	datasetpb.UnimplementedDatasetServiceServer
	svc *Service
}

var _ datasetpb.DatasetServiceServer = (*handler)(nil)

const (
	defaultPageSize  = 50
	defaultImagePage = 100
	maxPageSize      = 1000
	maxThumbnail     = 512
	maxDescription   = 4096
	readPage         = 500
)

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

func (h *handler) st() store { return store{db: h.svc.deps.DB} }

// dataset finds a dataset by name, as a status error when it cannot.
func (h *handler) dataset(ctx context.Context, name string) (*datasetRow, error) {
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "dataset name is required")
	}
	if !nameRE.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "dataset name %q is invalid: use 1 to 63 lower-case letters, digits, '-' and '_'", name)
	}
	ds, err := h.st().dataset(ctx, name)
	if errors.Is(err, errNotFound) {
		return nil, status.Errorf(codes.NotFound, "dataset %q not found", name)
	}
	return ds, err
}

func (h *handler) CreateDataset(ctx context.Context, req *datasetpb.CreateDatasetRequest) (*datasetpb.CreateDatasetResponse, error) {
	if !nameRE.MatchString(req.GetName()) {
		return nil, status.Errorf(codes.InvalidArgument, "dataset name %q is invalid: use 1 to 63 lower-case letters, digits, '-' and '_'", req.GetName())
	}
	if len(req.GetDescription()) > maxDescription {
		return nil, status.Errorf(codes.InvalidArgument, "description is %d bytes; at most %d are allowed", len(req.GetDescription()), maxDescription)
	}
	row, err := h.st().createDataset(ctx, req.GetName(), req.GetDescription())
	if errors.Is(err, errExists) {
		return nil, status.Errorf(codes.AlreadyExists, "dataset %q already exists", req.GetName())
	}
	if err != nil {
		return nil, err
	}
	pb, err := h.datasetPB(ctx, row)
	return &datasetpb.CreateDatasetResponse{Dataset: pb}, err
}

func (h *handler) datasetPB(ctx context.Context, row *datasetRow) (*datasetpb.Dataset, error) {
	sum, err := h.st().summary(ctx, row.ID)
	if err != nil {
		return nil, err
	}
	return &datasetpb.Dataset{
		Name: row.Name, Description: row.Description, ImageCount: sum.images, Labels: sum.labels,
		SnapshotCount: sum.snapshots, CreateTime: timestamppb.New(row.CreatedAt), UpdateTime: timestamppb.New(row.UpdatedAt),
	}, nil
}

func (h *handler) GetDataset(ctx context.Context, req *datasetpb.GetDatasetRequest) (*datasetpb.GetDatasetResponse, error) {
	ds, err := h.dataset(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	pb, err := h.datasetPB(ctx, ds)
	return &datasetpb.GetDatasetResponse{Dataset: pb}, err
}

func (h *handler) ListDatasets(ctx context.Context, req *datasetpb.ListDatasetsRequest) (*datasetpb.ListDatasetsResponse, error) {
	size, err := pageSize(req.GetPageSize(), defaultPageSize)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(req.GetPageToken(), "d")
	if err != nil {
		return nil, err
	}
	rows, err := h.st().listDatasets(ctx, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datasetpb.ListDatasetsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeToken("d", rows[size-1].Name)
	}
	for i := range rows {
		pb, err := h.datasetPB(ctx, &rows[i])
		if err != nil {
			return nil, err
		}
		resp.Datasets = append(resp.Datasets, pb)
	}
	return resp, nil
}

func (h *handler) DeleteDataset(ctx context.Context, req *datasetpb.DeleteDatasetRequest) (*datasetpb.DeleteDatasetResponse, error) {
	ds, err := h.dataset(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	images, unreferenced, err := h.st().deleteDataset(ctx, ds.ID)
	if err != nil {
		return nil, err
	}
	// The rows are gone; a blob left behind by a failure here is an orphan
	// the sweep removes, so report what was done rather than fail.
	var blobs int64
	for _, sha := range unreferenced {
		if err := h.svc.deps.Blobs.Delete(ctx, blobKey(sha)); err != nil {
			h.svc.deps.Log.Warn("delete dataset: blob left for the orphan sweep", "dataset", ds.Name, "sha256", sha, "err", err)
			continue
		}
		blobs++
	}
	return &datasetpb.DeleteDatasetResponse{ImagesDeleted: images, BlobsDeleted: blobs}, nil
}

// streamEvents sends an import's events on a server stream.
type streamEvents struct {
	stream datasetpb.DatasetService_ImportImagesServer
}

func (s streamEvents) progress(p *datasetpb.ImportProgress) error {
	return s.stream.Send(&datasetpb.ImportImagesResponse{Event: &datasetpb.ImportImagesResponse_Progress{Progress: p}})
}

func (s streamEvents) rejection(r *datasetpb.FileRejection) error {
	return s.stream.Send(&datasetpb.ImportImagesResponse{Event: &datasetpb.ImportImagesResponse_Rejection{Rejection: r}})
}

func (h *handler) ImportImages(req *datasetpb.ImportImagesRequest, stream datasetpb.DatasetService_ImportImagesServer) error {
	ctx := stream.Context()
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return err
	}
	var src source
	switch s := req.GetSource().(type) {
	case *datasetpb.ImportImagesRequest_Local:
		root, err := h.openLocal(s.Local.GetPath())
		if err != nil {
			return err
		}
		defer root.Close()
		src = localSource{root: root}
	case *datasetpb.ImportImagesRequest_ObjectStore:
		if src, err = h.openObjectStore(ctx, s.ObjectStore); err != nil {
			return err
		}
	default:
		return status.Error(codes.InvalidArgument, "source is required: local (a server folder) or object_store (bucket and prefix)")
	}
	counts, err := h.svc.runImport(ctx, ds, src, streamEvents{stream: stream})
	if err != nil {
		return h.importFailed(ds, counts, err)
	}
	return stream.Send(&datasetpb.ImportImagesResponse{Event: &datasetpb.ImportImagesResponse_Done{Done: counts}})
}

// importFailed turns an import's error into the status the client sees.
func (h *handler) importFailed(ds *datasetRow, counts *datasetpb.ImportCounts, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, errStorage) {
		h.svc.deps.Log.Warn("import stopped: storage failed", "dataset", ds.Name, "added", counts.GetAdded(), "err", err)
		return status.Errorf(codes.Unavailable,
			"storage failed after %d images were added; the import stopped cleanly, run it again to finish", counts.GetAdded())
	}
	return err
}

// openLocal opens a server folder inside one of the import roots.
func (h *handler) openLocal(p string) (*os.Root, error) {
	if p == "" {
		return nil, status.Error(codes.InvalidArgument, "local.path is required")
	}
	if len(h.svc.roots) == 0 {
		return nil, status.Error(codes.PermissionDenied, "importing server folders is disabled (dataset.import-roots is empty); use UploadImages")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "local.path %q is not a usable path", p)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && h.inRoots(abs) {
			return nil, status.Errorf(codes.NotFound, "folder %q does not exist", p)
		}
		if h.inRoots(abs) {
			return nil, status.Errorf(codes.FailedPrecondition, "folder %q cannot be read", p)
		}
	}
	if err != nil || !h.inRoots(real) {
		return nil, status.Errorf(codes.PermissionDenied, "folder %q is outside the folders this server imports from (its dataset.import-roots setting)", p)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.IsDir() {
		return nil, status.Errorf(codes.InvalidArgument, "%q is not a folder", p)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "folder %q cannot be read", p)
	}
	return root, nil
}

func (h *handler) inRoots(p string) bool {
	for _, r := range h.svc.roots {
		if rel, err := filepath.Rel(r, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func (h *handler) openObjectStore(ctx context.Context, src *datasetpb.ObjectStoreSource) (source, error) {
	if h.svc.deps.ObjectStore == nil {
		return nil, status.Error(codes.FailedPrecondition, "object-store imports need the S3 blob backend (blob.backend=s3)")
	}
	if src.GetBucket() == "" {
		return nil, status.Error(codes.InvalidArgument, "object_store.bucket is required")
	}
	if err := s3utils.CheckValidBucketNameStrict(src.GetBucket()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "object_store.bucket %q is not a valid bucket name", src.GetBucket())
	}
	prefix := strings.Trim(src.GetPrefix(), "/")
	if prefix != "" {
		if err := blob.ValidateKey(prefix); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "object_store.prefix %q is not a valid key prefix", src.GetPrefix())
		}
	}
	where := src.GetBucket() + "/" + prefix
	st, err := h.svc.deps.ObjectStore(ctx, src.GetBucket(), prefix)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", where, err)
	}
	return objectSource{store: st, where: where}, nil
}

// uploadEvents collects an upload's rejections for its one response.
type uploadEvents struct{ rejections []*datasetpb.FileRejection }

func (u *uploadEvents) progress(*datasetpb.ImportProgress) error { return nil }
func (u *uploadEvents) rejection(r *datasetpb.FileRejection) error {
	u.rejections = append(u.rejections, r)
	return nil
}

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
		switch r := checkLabel(f.GetLabel()); {
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
		return nil, nil, status.Error(codes.InvalidArgument, "the first archive chunk must carry the archive's file_name (.zip, .tar, .tar.gz or .tgz)")
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

func (h *handler) imagePB(ds *datasetRow, r *imageRow) *datasetpb.Image {
	id := strconv.FormatInt(r.ID, 10)
	return &datasetpb.Image{
		Id: id, Dataset: ds.Name, Split: datasetpb.Split(r.Split), Label: r.Label, FileName: r.FileName,
		Sha256: r.SHA256, Url: "/v1/datasets/" + ds.Name + "/images/" + id + "/content",
		Width: r.Width, Height: r.Height, Format: formatPB(r.Format), SizeBytes: r.SizeBytes,
		CreateTime: timestamppb.New(r.CreatedAt),
	}
}

func formatPB(f string) datasetpb.ImageFormat {
	switch imaging.Format(f) {
	case imaging.JPEG:
		return datasetpb.ImageFormat_IMAGE_FORMAT_JPEG
	case imaging.PNG:
		return datasetpb.ImageFormat_IMAGE_FORMAT_PNG
	case imaging.GIF:
		return datasetpb.ImageFormat_IMAGE_FORMAT_GIF
	case imaging.WebP:
		return datasetpb.ImageFormat_IMAGE_FORMAT_WEBP
	case imaging.BMP:
		return datasetpb.ImageFormat_IMAGE_FORMAT_BMP
	}
	return datasetpb.ImageFormat_IMAGE_FORMAT_UNSPECIFIED
}

// snapshotID resolves a snapshot filter: 0 means the current membership.
func (h *handler) snapshotID(ctx context.Context, ds *datasetRow, version int64) (int64, error) {
	switch {
	case version == 0:
		return 0, nil
	case version < 0:
		return 0, status.Errorf(codes.InvalidArgument, "snapshot version %d is invalid", version)
	}
	snap, err := h.st().snapshot(ctx, ds.ID, version)
	if errors.Is(err, errNotFound) {
		return 0, status.Errorf(codes.NotFound, "dataset %q has no snapshot %d", ds.Name, version)
	}
	if err != nil {
		return 0, err
	}
	return snap.ID, nil
}

func checkSplit(s datasetpb.Split) error {
	if _, ok := datasetpb.Split_name[int32(s)]; !ok {
		return status.Errorf(codes.InvalidArgument, "split %d is not a known split", s)
	}
	return nil
}

func (h *handler) ListImages(ctx context.Context, req *datasetpb.ListImagesRequest) (*datasetpb.ListImagesResponse, error) {
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return nil, err
	}
	if err := checkSplit(req.GetSplit()); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), defaultImagePage)
	if err != nil {
		return nil, err
	}
	tok, err := decodeToken(req.GetPageToken(), "i")
	if err != nil {
		return nil, err
	}
	var after int64
	if tok != "" {
		if after, err = strconv.ParseInt(tok, 10, 64); err != nil {
			return nil, status.Error(codes.InvalidArgument, "page_token is invalid")
		}
	}
	snapID, err := h.snapshotID(ctx, ds, req.GetSnapshotVersion())
	if err != nil {
		return nil, err
	}
	f := imageFilter{datasetID: ds.ID, snapshotID: snapID, split: int16(req.GetSplit()), label: req.GetLabel()}
	rows, total, err := h.st().listImages(ctx, f, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datasetpb.ListImagesResponse{TotalSize: total}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeToken("i", strconv.FormatInt(rows[size-1].ID, 10))
	}
	for i := range rows {
		resp.Images = append(resp.Images, h.imagePB(ds, &rows[i]))
	}
	return resp, nil
}

func (h *handler) image(ctx context.Context, dataset, id string) (*datasetRow, *imageRow, error) {
	ds, err := h.dataset(ctx, dataset)
	if err != nil {
		return nil, nil, err
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "image id %q is invalid", id)
	}
	img, err := h.st().image(ctx, ds.ID, n)
	if errors.Is(err, errNotFound) {
		return nil, nil, status.Errorf(codes.NotFound, "dataset %q has no image %s", dataset, id)
	}
	return ds, img, err
}

func (h *handler) GetImage(ctx context.Context, req *datasetpb.GetImageRequest) (*datasetpb.GetImageResponse, error) {
	ds, img, err := h.image(ctx, req.GetDataset(), req.GetImageId())
	if err != nil {
		return nil, err
	}
	return &datasetpb.GetImageResponse{Image: h.imagePB(ds, img)}, nil
}

func (h *handler) GetImageContent(ctx context.Context, req *datasetpb.GetImageContentRequest) (*datasetpb.GetImageContentResponse, error) {
	if req.GetThumbnailSize() > maxThumbnail {
		return nil, status.Errorf(codes.InvalidArgument, "thumbnail_size %d is larger than %d", req.GetThumbnailSize(), maxThumbnail)
	}
	_, img, err := h.image(ctx, req.GetDataset(), req.GetImageId())
	if err != nil {
		return nil, err
	}
	data, err := h.readBlob(ctx, img.SHA256)
	if err != nil {
		return nil, err
	}
	if req.GetThumbnailSize() > 0 {
		thumb, err := imaging.Thumbnail(data, int(req.GetThumbnailSize()), imaging.Limits{})
		if err != nil {
			return nil, fmt.Errorf("thumbnail of %s: %w", img.SHA256, err)
		}
		return &datasetpb.GetImageContentResponse{Body: &httpbody.HttpBody{ContentType: "image/jpeg", Data: thumb}}, nil
	}
	return &datasetpb.GetImageContentResponse{Body: &httpbody.HttpBody{ContentType: imaging.Format(img.Format).ContentType(), Data: data}}, nil
}

func (h *handler) readBlob(ctx context.Context, sha string) ([]byte, error) {
	rc, err := h.svc.deps.Blobs.Get(ctx, blobKey(sha))
	if errors.Is(err, blob.ErrNotFound) {
		return nil, status.Errorf(codes.DataLoss, "the bytes of image %s are missing from the blob store", sha)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "the blob store cannot be read now; try again")
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "the blob store cannot be read now; try again")
	}
	return data, nil
}

// sizeBounds are the edges of the size distribution's buckets (longer side).
var sizeBounds = []int32{0, 32, 64, 128, 256, 512, 1024, 2048, 4096}

func (h *handler) GetDatasetStats(ctx context.Context, req *datasetpb.GetDatasetStatsRequest) (*datasetpb.GetDatasetStatsResponse, error) {
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return nil, err
	}
	snapID, err := h.snapshotID(ctx, ds, req.GetSnapshotVersion())
	if err != nil {
		return nil, err
	}
	counts, sizes, err := h.st().stats(ctx, imageFilter{datasetID: ds.ID, snapshotID: snapID})
	if err != nil {
		return nil, err
	}
	resp := &datasetpb.GetDatasetStatsResponse{Counts: countsPB(counts)}
	for _, c := range counts {
		resp.ImageCount += c.Count
	}
	buckets := make([]*datasetpb.SizeBucket, len(sizeBounds))
	for i, lo := range sizeBounds {
		hi := int32(0)
		if i+1 < len(sizeBounds) {
			hi = sizeBounds[i+1]
		}
		buckets[i] = &datasetpb.SizeBucket{MinPixels: lo, MaxPixels: hi}
	}
	for _, s := range sizes {
		side := max(s.Width, s.Height)
		i := len(sizeBounds) - 1
		for i > 0 && side < sizeBounds[i] {
			i--
		}
		buckets[i].Count += s.Count
		resp.TotalBytes += s.Bytes
	}
	resp.Sizes = buckets
	return resp, nil
}

func countsPB(counts []labelCount) []*datasetpb.LabelCount {
	out := make([]*datasetpb.LabelCount, len(counts))
	for i, c := range counts {
		out[i] = &datasetpb.LabelCount{Split: datasetpb.Split(c.Split), Label: c.Label, Count: c.Count}
	}
	return out
}

func (h *handler) snapshotPB(ctx context.Context, ds *datasetRow, s *snapshotRow, counts []labelCount) (*datasetpb.Snapshot, error) {
	if counts == nil {
		var err error
		if counts, err = h.st().snapshotCounts(ctx, s.ID); err != nil {
			return nil, err
		}
	}
	return &datasetpb.Snapshot{
		Dataset: ds.Name, Version: s.Version, ImageCount: s.ImageCount, Counts: countsPB(counts),
		ManifestSha256: s.ManifestSHA256, Description: s.Description, CreateTime: timestamppb.New(s.CreatedAt),
	}, nil
}

func (h *handler) CreateSnapshot(ctx context.Context, req *datasetpb.CreateSnapshotRequest) (*datasetpb.CreateSnapshotResponse, error) {
	if len(req.GetDescription()) > maxDescription {
		return nil, status.Errorf(codes.InvalidArgument, "description is %d bytes; at most %d are allowed", len(req.GetDescription()), maxDescription)
	}
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return nil, err
	}
	snap, counts, err := h.st().createSnapshot(ctx, ds.ID, req.GetDescription())
	if errors.Is(err, errExists) {
		return nil, status.Error(codes.Aborted, "another snapshot of this dataset was taken at the same moment; try again")
	}
	if err != nil {
		return nil, err
	}
	pb, err := h.snapshotPB(ctx, ds, snap, counts)
	return &datasetpb.CreateSnapshotResponse{Snapshot: pb}, err
}

func (h *handler) snapshot(ctx context.Context, name string, version int64) (*datasetRow, *snapshotRow, error) {
	ds, err := h.dataset(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if version < 0 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "snapshot version %d is invalid", version)
	}
	snap, err := h.st().snapshot(ctx, ds.ID, version)
	if errors.Is(err, errNotFound) {
		if version == 0 {
			return nil, nil, status.Errorf(codes.NotFound, "dataset %q has no snapshot yet; create one first", name)
		}
		return nil, nil, status.Errorf(codes.NotFound, "dataset %q has no snapshot %d", name, version)
	}
	return ds, snap, err
}

func (h *handler) GetSnapshot(ctx context.Context, req *datasetpb.GetSnapshotRequest) (*datasetpb.GetSnapshotResponse, error) {
	ds, snap, err := h.snapshot(ctx, req.GetDataset(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	pb, err := h.snapshotPB(ctx, ds, snap, nil)
	return &datasetpb.GetSnapshotResponse{Snapshot: pb}, err
}

func (h *handler) ListSnapshots(ctx context.Context, req *datasetpb.ListSnapshotsRequest) (*datasetpb.ListSnapshotsResponse, error) {
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), defaultPageSize)
	if err != nil {
		return nil, err
	}
	tok, err := decodeToken(req.GetPageToken(), "s")
	if err != nil {
		return nil, err
	}
	var before int64
	if tok != "" {
		if before, err = strconv.ParseInt(tok, 10, 64); err != nil || before <= 0 {
			return nil, status.Error(codes.InvalidArgument, "page_token is invalid")
		}
	}
	rows, err := h.st().listSnapshots(ctx, ds.ID, before, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datasetpb.ListSnapshotsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeToken("s", strconv.FormatInt(rows[size-1].Version, 10))
	}
	for i := range rows {
		pb, err := h.snapshotPB(ctx, ds, &rows[i], nil)
		if err != nil {
			return nil, err
		}
		resp.Snapshots = append(resp.Snapshots, pb)
	}
	return resp, nil
}

func (h *handler) ReadSnapshot(req *datasetpb.ReadSnapshotRequest, stream datasetpb.DatasetService_ReadSnapshotServer) error {
	ctx := stream.Context()
	if err := checkSplit(req.GetSplit()); err != nil {
		return err
	}
	ds, snap, err := h.snapshot(ctx, req.GetDataset(), req.GetVersion())
	if err != nil {
		return err
	}
	for from := int64(0); ; {
		rows, pos, err := h.st().snapshotPage(ctx, snap.ID, int16(req.GetSplit()), from, readPage)
		if err != nil {
			return err
		}
		for i := range rows {
			msg := &datasetpb.ReadSnapshotResponse{Image: h.imagePB(ds, &rows[i])}
			if req.GetIncludeContent() {
				if msg.Content, err = h.readBlob(ctx, rows[i].SHA256); err != nil {
					return err
				}
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		if len(pos) < readPage {
			return nil
		}
		from = pos[len(pos)-1] + 1
	}
}

func pageSize(n int32, def int) (int, error) {
	switch {
	case n < 0:
		return 0, status.Errorf(codes.InvalidArgument, "page_size %d is negative", n)
	case n == 0:
		return def, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}

// Page tokens are opaque to clients: a kind letter and the last key seen,
// base64url-encoded, so a token of one list is refused by another.
func encodeToken(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

func decodeToken(tok, kind string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	key, ok := strings.CutPrefix(string(b), kind+":")
	if err != nil || !ok || key == "" {
		return "", status.Error(codes.InvalidArgument, "page_token is invalid: pass next_page_token from the previous response unchanged")
	}
	return key, nil
}
