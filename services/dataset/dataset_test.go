package dataset

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

func TestDatasets(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, envOpts{db: cfg})
		ctx := t.Context()
		for _, name := range []string{"fish", "a", "b-1", "c_2"} {
			e.create(t, name)
		}
		bad := []string{"", "Fish", "has space", "dot.name", strings.Repeat("x", 64), "é"}
		for _, name := range bad {
			_, err := e.client.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: name})
			wantCode(t, "CreateDataset("+name+")", err, codes.InvalidArgument)
		}
		_, err := e.client.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "fish"})
		wantCode(t, "CreateDataset(fish) again", err, codes.AlreadyExists)
		_, err = e.client.GetDataset(ctx, &datasetpb.GetDatasetRequest{Name: "nope"})
		wantCode(t, "GetDataset(nope)", err, codes.NotFound)

		got, err := e.client.GetDataset(ctx, &datasetpb.GetDatasetRequest{Name: "fish"})
		if err != nil || got.GetDataset().GetName() != "fish" || got.GetDataset().GetCreateTime() == nil {
			t.Fatalf("GetDataset(fish) = %v, %v", got, err)
		}

		var names []string
		tok := ""
		for {
			resp, err := e.client.ListDatasets(ctx, &datasetpb.ListDatasetsRequest{PageSize: 3, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range resp.GetDatasets() {
				names = append(names, d.GetName())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if strings.Join(names, ",") != "a,b-1,c_2,fish" {
			t.Errorf("ListDatasets pages = %v; want a,b-1,c_2,fish", names)
		}
		_, err = e.client.ListDatasets(ctx, &datasetpb.ListDatasetsRequest{PageToken: "garbage!"})
		wantCode(t, "ListDatasets(bad token)", err, codes.InvalidArgument)

		if _, err := e.client.DeleteDataset(ctx, &datasetpb.DeleteDatasetRequest{Name: "a"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.client.DeleteDataset(ctx, &datasetpb.DeleteDatasetRequest{Name: "a"})
		wantCode(t, "DeleteDataset(a) twice", err, codes.NotFound)
	})
}

// TestDeleteKeepsSharedBlobs: blobs are shared across datasets, and a delete
// removes only the ones no other dataset uses.
func TestDeleteKeepsSharedBlobs(t *testing.T) {
	e := newEnv(t, envOpts{})
	writeFile(t, e.root, "one/train/A/shared.png", imagingtest.PNG(8, 8, 1))
	writeFile(t, e.root, "one/train/A/own.png", imagingtest.PNG(8, 8, 2))
	writeFile(t, e.root, "two/test/B/shared.png", imagingtest.PNG(8, 8, 1))
	e.create(t, "one")
	e.create(t, "two")
	for _, ds := range []string{"one", "two"} {
		if r := e.importLocal(t, ds, e.root+"/"+ds); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if n := countBlobs(t, e.blobs); n != 2 {
		t.Fatalf("blobs after two imports = %d; want 2 (identical bytes stored once)", n)
	}
	if _, err := e.client.CreateSnapshot(t.Context(), &datasetpb.CreateSnapshotRequest{Dataset: "one"}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.DeleteDataset(t.Context(), &datasetpb.DeleteDatasetRequest{Name: "one"})
	if err != nil || resp.GetImagesDeleted() != 2 || resp.GetBlobsDeleted() != 1 {
		t.Fatalf("DeleteDataset(one) = %v, %v; want 2 images, 1 blob", resp, err)
	}
	if n := countBlobs(t, e.blobs); n != 1 {
		t.Fatalf("blobs after delete = %d; want 1", n)
	}
	c, err := e.client.GetImageContent(t.Context(), &datasetpb.GetImageContentRequest{Dataset: "two", ImageId: firstImageID(t, e, "two")})
	if err != nil || len(c.GetBody().GetData()) == 0 {
		t.Fatalf("GetImageContent(two) after deleting one = %v", err)
	}
}

func firstImageID(t *testing.T, e *env, ds string) string {
	t.Helper()
	resp, err := e.client.ListImages(t.Context(), &datasetpb.ListImagesRequest{Dataset: ds, PageSize: 1})
	if err != nil || len(resp.GetImages()) == 0 {
		t.Fatalf("ListImages(%s) = %v, %v", ds, resp, err)
	}
	return resp.GetImages()[0].GetId()
}
