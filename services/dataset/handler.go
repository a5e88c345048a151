package dataset

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/storage"
)

// handler is the service's RPC surface: datasets and imports here, uploads
// in upload.go, images and statistics in browse.go, snapshots in
// snapshots.go. Where imported files come from is in sources.go.
type handler struct {
	datasetpb.UnimplementedDatasetServiceServer
	svc *Service
}

var _ datasetpb.DatasetServiceServer = (*handler)(nil)

// Requests arrive checked against the rules of proto/shoal/dataset/v1
// (names, page sizes, versions, splits, description lengths: see
// internal/server's validation); the handlers check what those rules
// cannot say.

func (h *handler) st() store { return store{db: h.svc.deps.DB} }

// dataset finds a dataset by name, as a status error when it cannot.
func (h *handler) dataset(ctx context.Context, name string) (*datasetRow, error) {
	ds, err := h.st().dataset(ctx, name)
	if errors.Is(err, errNotFound) {
		return nil, status.Errorf(codes.NotFound, "dataset %q not found", name)
	}
	return ds, err
}

func (h *handler) CreateDataset(ctx context.Context, req *datasetpb.CreateDatasetRequest) (*datasetpb.CreateDatasetResponse, error) {
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
	size := pageSize(req.GetPageSize(), defaultPageSize)
	after, err := decodeToken(req.GetPageToken(), "d")
	if err != nil {
		return nil, err
	}
	rows, err := h.st().listDatasets(ctx, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datasetpb.ListDatasetsResponse{}
	rows, resp.NextPageToken = nextPage(rows, size, "d", func(r *datasetRow) string { return r.Name })
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

// ImportImages imports a server folder inside the import roots, or a bucket
// prefix, streaming progress and rejections as it goes.
func (h *handler) ImportImages(req *datasetpb.ImportImagesRequest, stream datasetpb.DatasetService_ImportImagesServer) error {
	ctx := stream.Context()
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return err
	}
	var src source
	switch s := req.GetSource().(type) {
	case *datasetpb.ImportImagesRequest_Local:
		root, err := h.svc.openLocal(s.Local.GetPath())
		if err != nil {
			return err
		}
		defer root.Close()
		src = localSource{root: root}
	case *datasetpb.ImportImagesRequest_ObjectStore:
		if src, err = h.svc.openObjectStore(ctx, s.ObjectStore); err != nil {
			return err
		}
	default:
		return status.Error(codes.InvalidArgument, "source is required: local (a server folder) or objectStore (bucket and prefix)")
	}
	counts, err := h.svc.runImport(ctx, ds, src, streamEvents{stream: stream})
	if err != nil {
		return h.importFailed(ds, counts, err)
	}
	return stream.Send(&datasetpb.ImportImagesResponse{Event: &datasetpb.ImportImagesResponse_Done{Done: counts}})
}

// importFailed turns an import's error into the status the client sees.
func (h *handler) importFailed(ds *datasetRow, counts *datasetpb.ImportCounts, err error) error {
	if st, ok := status.FromError(err); ok {
		// A source that breaks off midway (a truncated archive, one that
		// expands past its limit) has had its images before that point
		// stored: say so, or a refusal would read as nothing stored.
		if n := counts.GetAdded(); n > 0 && st.Code() != codes.Canceled && st.Code() != codes.DeadlineExceeded {
			return status.Errorf(st.Code(), "%s; the %s read before that point were added (a second run counts them as duplicates)",
				st.Message(), plural(n, "image"))
		}
		return err
	}
	f, ok := storage.Classify(err)
	if !ok && errors.Is(err, errStorage) {
		f, ok = storage.Failure{Code: codes.Unavailable, What: "the blob store failed", Hint: "try again shortly"}, true
	}
	if ok {
		h.svc.deps.Log.Warn("import stopped: storage failed", "dataset", ds.Name, "added", counts.GetAdded(), "err", err)
		return status.Errorf(f.Code, "%s; the import stopped cleanly after %d images were added: %s to finish it",
			f.What, counts.GetAdded(), f.Hint)
	}
	return err
}

// plural is "1 image", "2 images".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
