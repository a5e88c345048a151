package dataset

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

// readPage is how many rows ReadSnapshot reads from the database at a time.
const readPage = 500

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
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return nil, err
	}
	snap, counts, reused, err := h.st().createSnapshot(ctx, ds.ID, req.GetDescription(), req.GetReuseUnchanged())
	if errors.Is(err, errExists) {
		return nil, status.Error(codes.Aborted, "another snapshot of this dataset was taken at the same moment; try again")
	}
	if err != nil {
		return nil, err
	}
	pb, err := h.snapshotPB(ctx, ds, snap, counts)
	return &datasetpb.CreateSnapshotResponse{Snapshot: pb, Reused: reused}, err
}

func (h *handler) snapshot(ctx context.Context, name string, version int64) (*datasetRow, *snapshotRow, error) {
	ds, err := h.dataset(ctx, name)
	if err != nil {
		return nil, nil, err
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
	size := pageSize(req.GetPageSize(), defaultPageSize)
	tok, err := decodeToken(req.GetPageToken(), "s")
	if err != nil {
		return nil, err
	}
	var before int64
	if tok != "" {
		if before, err = strconv.ParseInt(tok, 10, 64); err != nil || before <= 0 {
			return nil, status.Error(codes.InvalidArgument, "pageToken is invalid")
		}
	}
	rows, err := h.st().listSnapshots(ctx, ds.ID, before, size+1)
	if err != nil {
		return nil, err
	}
	resp := &datasetpb.ListSnapshotsResponse{}
	rows, resp.NextPageToken = nextPage(rows, size, "s", func(r *snapshotRow) string { return strconv.FormatInt(r.Version, 10) })
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
