package dataset

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Page sizes of the List RPCs, and the largest thumbnail GetImageContent
// makes.
const (
	defaultPageSize  = 50
	defaultImagePage = 100
	maxPageSize      = 1000
)

// pageSize is the page a List request asks for (never negative: the
// contract's rule): def for 0, at most maxPageSize.
func pageSize(n int32, def int) int {
	switch {
	case n == 0:
		return def
	case n > maxPageSize:
		return maxPageSize
	}
	return int(n)
}

// Page tokens are opaque to clients: a kind letter and the last key seen,
// base64url-encoded, so a token of one list is refused by another.
func encodeToken(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

// nextPage cuts rows, read with one row more than the page holds, to size,
// and returns the token of the page after them: "" after the last page.
func nextPage[T any](rows []T, size int, kind string, key func(*T) string) ([]T, string) {
	if len(rows) <= size {
		return rows, ""
	}
	rows = rows[:size]
	return rows, encodeToken(kind, key(&rows[size-1]))
}

func decodeToken(tok, kind string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	key, ok := strings.CutPrefix(string(b), kind+":")
	if err != nil || !ok || key == "" {
		return "", status.Error(codes.InvalidArgument, "pageToken is invalid: pass nextPageToken from the previous response unchanged")
	}
	return key, nil
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
	if version == 0 {
		return 0, nil
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

func (h *handler) ListImages(ctx context.Context, req *datasetpb.ListImagesRequest) (*datasetpb.ListImagesResponse, error) {
	ds, err := h.dataset(ctx, req.GetDataset())
	if err != nil {
		return nil, err
	}
	size := pageSize(req.GetPageSize(), defaultImagePage)
	tok, err := decodeToken(req.GetPageToken(), "i")
	if err != nil {
		return nil, err
	}
	var after int64
	if tok != "" {
		if after, err = strconv.ParseInt(tok, 10, 64); err != nil {
			return nil, status.Error(codes.InvalidArgument, "pageToken is invalid")
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
	rows, resp.NextPageToken = nextPage(rows, size, "i", func(r *imageRow) string { return strconv.FormatInt(r.ID, 10) })
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
