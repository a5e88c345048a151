package dataset

import (
	"bytes"
	"errors"
	"image/jpeg"
	"io"
	"testing"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

func TestSnapshotsAndBrowse(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, envOpts{db: cfg})
		ctx := t.Context()
		// 3 train/Cat, 2 train/Dog, 1 test/Cat of sizes 10, 40 and 300 px.
		writeFile(t, e.root, "p/train/Cat/1.png", imagingtest.PNG(10, 5, 1))
		writeFile(t, e.root, "p/train/Cat/2.png", imagingtest.PNG(40, 40, 2))
		writeFile(t, e.root, "p/train/Cat/3.png", imagingtest.PNG(300, 20, 3))
		writeFile(t, e.root, "p/train/Dog/4.jpg", imagingtest.JPEG(10, 10, 4))
		writeFile(t, e.root, "p/train/Dog/5.jpg", imagingtest.JPEG(10, 10, 5))
		writeFile(t, e.root, "p/test/Cat/6.png", imagingtest.PNG(10, 10, 6))
		e.create(t, "pets")
		if r := e.importLocal(t, "pets", e.root+"/p"); r.err != nil || r.done.GetAdded() != 6 {
			t.Fatalf("import = %v, %v", r.done, r.err)
		}

		stats, err := e.client.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "pets"})
		if err != nil {
			t.Fatal(err)
		}
		wantCounts := []string{"SPLIT_TRAIN/Cat=3", "SPLIT_TRAIN/Dog=2", "SPLIT_TEST/Cat=1"}
		if got := countStrings(stats.GetCounts()); !equal(got, wantCounts) || stats.GetImageCount() != 6 {
			t.Errorf("stats counts = %v (%d); want %v (6)", got, stats.GetImageCount(), wantCounts)
		}
		sizes := map[int32]int64{}
		for _, b := range stats.GetSizes() {
			sizes[b.GetMinPixels()] = b.GetCount()
		}
		if sizes[0] != 4 || sizes[32] != 1 || sizes[256] != 1 || stats.GetTotalBytes() <= 0 {
			t.Errorf("size buckets = %v, total %d; want [0,32):4 [32,64):1 [256,512):1", stats.GetSizes(), stats.GetTotalBytes())
		}

		snap, err := e.client.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "pets", Description: "first"})
		if err != nil {
			t.Fatal(err)
		}
		s1 := snap.GetSnapshot()
		if s1.GetVersion() != 1 || s1.GetImageCount() != 6 || !equal(countStrings(s1.GetCounts()), wantCounts) || len(s1.GetManifestSha256()) != 64 {
			t.Fatalf("CreateSnapshot = %v", s1)
		}
		// The same membership gives the same manifest hash.
		s2, err := e.client.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "pets"})
		if err != nil || s2.GetSnapshot().GetVersion() != 2 || s2.GetSnapshot().GetManifestSha256() != s1.GetManifestSha256() {
			t.Fatalf("second snapshot = %v, %v; want version 2 with the same hash", s2, err)
		}
		// Snapshots are frozen: new images change neither v1's counts nor its reading.
		writeFile(t, e.root, "p/train/Dog/7.png", imagingtest.PNG(10, 10, 7))
		if r := e.importLocal(t, "pets", e.root+"/p"); r.err != nil || r.done.GetAdded() != 1 {
			t.Fatalf("import = %v, %v", r.done, r.err)
		}
		s3, err := e.client.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "pets"})
		if err != nil || s3.GetSnapshot().GetImageCount() != 7 || s3.GetSnapshot().GetManifestSha256() == s1.GetManifestSha256() {
			t.Fatalf("third snapshot = %v, %v", s3, err)
		}
		got, err := e.client.GetSnapshot(ctx, &datasetpb.GetSnapshotRequest{Dataset: "pets", Version: 1})
		if err != nil || got.GetSnapshot().GetImageCount() != 6 || !equal(countStrings(got.GetSnapshot().GetCounts()), wantCounts) {
			t.Fatalf("GetSnapshot(1) = %v, %v", got, err)
		}
		latest, err := e.client.GetSnapshot(ctx, &datasetpb.GetSnapshotRequest{Dataset: "pets"})
		if err != nil || latest.GetSnapshot().GetVersion() != 3 {
			t.Fatalf("GetSnapshot(latest) = %v, %v", latest, err)
		}
		snapStats, err := e.client.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "pets", SnapshotVersion: 1})
		if err != nil || snapStats.GetImageCount() != 6 {
			t.Fatalf("GetDatasetStats(snapshot 1) = %v, %v", snapStats, err)
		}

		var versions []int64
		tok := ""
		for {
			resp, err := e.client.ListSnapshots(ctx, &datasetpb.ListSnapshotsRequest{Dataset: "pets", PageSize: 2, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range resp.GetSnapshots() {
				versions = append(versions, s.GetVersion())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if len(versions) != 3 || versions[0] != 3 || versions[2] != 1 {
			t.Errorf("ListSnapshots = %v; want [3 2 1]", versions)
		}

		// ReadSnapshot: manifest order (split, label, sha256), with bytes.
		read := readSnapshot(t, e, &datasetpb.ReadSnapshotRequest{Dataset: "pets", Version: 1, IncludeContent: true})
		if len(read) != 6 {
			t.Fatalf("ReadSnapshot(1) = %d images; want 6", len(read))
		}
		for i, r := range read {
			if len(r.GetContent()) != int(r.GetImage().GetSizeBytes()) {
				t.Errorf("image %s: %d bytes of content; want %d", r.GetImage().GetId(), len(r.GetContent()), r.GetImage().GetSizeBytes())
			}
			if i > 0 {
				a, b := read[i-1].GetImage(), r.GetImage()
				if a.GetSplit() > b.GetSplit() || a.GetSplit() == b.GetSplit() && (a.GetLabel() > b.GetLabel() || a.GetLabel() == b.GetLabel() && a.GetSha256() > b.GetSha256()) {
					t.Errorf("ReadSnapshot out of manifest order at %d", i)
				}
			}
		}
		if n := len(readSnapshot(t, e, &datasetpb.ReadSnapshotRequest{Dataset: "pets", Version: 1, Split: datasetpb.Split_SPLIT_TEST})); n != 1 {
			t.Errorf("ReadSnapshot(1, test) = %d images; want 1", n)
		}

		// ListImages: filters, pages, totals.
		var ids []string
		tok = ""
		for {
			resp, err := e.client.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "pets", Split: datasetpb.Split_SPLIT_TRAIN, PageSize: 2, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetTotalSize() != 6 {
				t.Errorf("total_size = %d; want 6", resp.GetTotalSize())
			}
			for _, img := range resp.GetImages() {
				ids = append(ids, img.GetId())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if len(ids) != 6 {
			t.Errorf("ListImages(train) pages = %v; want 6 ids", ids)
		}
		inSnap, err := e.client.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "pets", Label: "Dog", SnapshotVersion: 1})
		if err != nil || inSnap.GetTotalSize() != 2 {
			t.Errorf("ListImages(Dog, snapshot 1) = %v, %v; want 2", inSnap, err)
		}

		img, err := e.client.GetImage(ctx, &datasetpb.GetImageRequest{Dataset: "pets", ImageId: read[0].GetImage().GetId()})
		if err != nil || img.GetImage().GetSha256() != read[0].GetImage().GetSha256() || img.GetImage().GetUrl() == "" {
			t.Fatalf("GetImage = %v, %v", img, err)
		}
		content, err := e.client.GetImageContent(ctx, &datasetpb.GetImageContentRequest{Dataset: "pets", ImageId: img.GetImage().GetId()})
		if err != nil || !bytes.Equal(content.GetBody().GetData(), read[0].GetContent()) || content.GetBody().GetContentType() == "" {
			t.Fatalf("GetImageContent = %v", err)
		}
		var big string
		for _, r := range read {
			if r.GetImage().GetWidth() == 300 {
				big = r.GetImage().GetId()
			}
		}
		thumb, err := e.client.GetImageContent(ctx, &datasetpb.GetImageContentRequest{Dataset: "pets", ImageId: big, ThumbnailSize: 64})
		if err != nil || thumb.GetBody().GetContentType() != "image/jpeg" {
			t.Fatalf("thumbnail = %v", err)
		}
		if c, err := jpeg.DecodeConfig(bytes.NewReader(thumb.GetBody().GetData())); err != nil || c.Width != 64 {
			t.Errorf("thumbnail is %dx%d (%v); want 64 wide", c.Width, c.Height, err)
		}

		for _, tc := range []struct {
			name string
			err  error
			code codes.Code
		}{
			{"GetImage(missing)", call(e.client.GetImage(ctx, &datasetpb.GetImageRequest{Dataset: "pets", ImageId: "999999"})), codes.NotFound},
			{"GetImage(bad id)", call(e.client.GetImage(ctx, &datasetpb.GetImageRequest{Dataset: "pets", ImageId: "x"})), codes.InvalidArgument},
			{"GetImageContent(thumb too big)", call(e.client.GetImageContent(ctx, &datasetpb.GetImageContentRequest{Dataset: "pets", ImageId: big, ThumbnailSize: 4096})), codes.InvalidArgument},
			{"GetSnapshot(9)", call(e.client.GetSnapshot(ctx, &datasetpb.GetSnapshotRequest{Dataset: "pets", Version: 9})), codes.NotFound},
			{"ListImages(snapshot 9)", call(e.client.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "pets", SnapshotVersion: 9})), codes.NotFound},
			{"ListImages(bad token)", call(e.client.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "pets", PageToken: encodeToken("d", "x")})), codes.InvalidArgument},
			{"GetDatasetStats(missing)", call(e.client.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "nope"})), codes.NotFound},
			{"CreateSnapshot(missing)", call(e.client.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "nope"})), codes.NotFound},
		} {
			wantCode(t, tc.name, tc.err, tc.code)
		}
	})
}

func call[T any](_ T, err error) error { return err }

func readSnapshot(t *testing.T, e *env, req *datasetpb.ReadSnapshotRequest) []*datasetpb.ReadSnapshotResponse {
	t.Helper()
	stream, err := e.client.ReadSnapshot(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var out []*datasetpb.ReadSnapshotResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("ReadSnapshot = %v", err)
		}
		out = append(out, msg)
	}
}

func countStrings(cs []*datasetpb.LabelCount) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.GetSplit().String()+"/"+c.GetLabel()+"="+itoa(int(c.GetCount())))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
