package dataset

import (
	"testing"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// TestUploadNonUTF8Names uploads archives whose entry names are not UTF-8,
// as zip files written on Windows often are. Such a name could neither be
// sent back in a rejection nor stored and listed (protobuf strings are
// UTF-8): the whole upload failed, or the dataset could no longer be
// listed. Each is now refused on its own with a reason.
func TestUploadNonUTF8Names(t *testing.T) {
	e := newEnv(t, envOpts{})
	ms := []member{
		{name: "train/Gold Fish/ok.png", data: imagingtest.PNG(4, 4, 1)},
		{name: "train/\xff\xfeFish/a.png", data: imagingtest.PNG(4, 4, 2)},
		{name: "train/Gold Fish/\xc3\x28.png", data: imagingtest.PNG(4, 4, 3)},
	}
	for i, archive := range []struct {
		name string
		data []byte
	}{{"names.zip", makeZip(t, ms)}, {"names.tar", makeTar(t, ms, false)}} {
		ds := []string{"zip", "tar"}[i]
		e.create(t, ds)
		resp, err := e.upload(t, append([]*datasetpb.UploadImagesRequest{header(ds)}, chunks(archive.name, archive.data, 1000)...)...)
		if err != nil {
			t.Fatalf("UploadImages(%s) = %v; want the bad names refused one by one", archive.name, err)
		}
		want := map[string]string{
			"train/\ufffdFish/a.png":      "label is not valid UTF-8", // a run of bad bytes becomes one U+FFFD
			"train/Gold Fish/\ufffd(.png": "file name is not valid UTF-8",
		}
		got := map[string]string{}
		for _, r := range resp.GetRejections() {
			got[r.GetPath()] = r.GetReason()
		}
		if len(got) != len(want) || resp.GetCounts().GetAdded() != 1 {
			t.Fatalf("UploadImages(%s) = %v added, rejections %q; want 1 added, rejections %q", archive.name, resp.GetCounts().GetAdded(), got, want)
		}
		for p, reason := range want {
			if got[p] != reason {
				t.Errorf("UploadImages(%s) rejection of %q = %q; want %q", archive.name, p, got[p], reason)
			}
		}
		list, err := e.client.ListImages(t.Context(), &datasetpb.ListImagesRequest{Dataset: ds})
		if err != nil || len(list.GetImages()) != 1 {
			t.Fatalf("ListImages(%s) = %v, %v; want the one image", ds, list, err)
		}
	}
}

// TestPlaceFolderMarkers checks that the empty objects S3 consoles create
// for folders (keys ending in '/') are skipped, not refused as empty
// images with no name.
func TestPlaceFolderMarkers(t *testing.T) {
	for _, key := range []string{"train/", "train/Fish/", "train/Fish/deeper/"} {
		if _, ignore, reason := placeFile(key); !ignore {
			t.Errorf("placeFile(%q) = not ignored, reason %q; want a folder marker skipped", key, reason)
		}
	}
	if e, ignore, reason := placeFile("train/Fish/a.png"); ignore || reason != "" || e.name != "a.png" {
		t.Errorf("placeFile(train/Fish/a.png) = %+v, %v, %q; want a.png placed", e, ignore, reason)
	}
}
