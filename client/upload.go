package client

import (
	"context"
	"os"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/upload"
)

type uploadSettings struct {
	layout   upload.Layout
	progress func(sent, total int64)
	skipped  func(path string)
}

// An UploadOption changes how UploadDir places files, or reports on them.
type UploadOption func(*uploadSettings)

// Split says the folder is laid out Label/file (Cat/1.jpg) and puts its
// images in this split; without it the folder is laid out split/Label/file
// (train/Cat/1.jpg, test/Dog/7.png).
func Split(s datasetpb.Split) UploadOption { return func(u *uploadSettings) { u.layout.Split = s } }

// TestFraction sends this share, in [0, 1), of a Label/file folder's
// images (see Split) to the test split instead, chosen by a hash of each
// file's path: uploading the folder again puts every file where it went
// before.
func TestFraction(f float64) UploadOption {
	return func(u *uploadSettings) { u.layout.TestFraction = f }
}

// Progress is called after each file (UploadDir) or chunk (UploadArchive)
// sent, with the files or bytes sent so far and the total.
func Progress(fn func(sent, total int64)) UploadOption {
	return func(u *uploadSettings) { u.progress = fn }
}

// Skipped is called, before anything is sent, with each file of the folder
// (relative, slash-separated) that is outside its layout and so not sent.
// Hidden files and files at the folder's top are passed over silently.
func Skipped(fn func(path string)) UploadOption {
	return func(u *uploadSettings) { u.skipped = fn }
}

func uploadOptions(opts []UploadOption) uploadSettings {
	var u uploadSettings
	for _, o := range opts {
		o(&u)
	}
	return u
}

// UploadDir uploads the images of a folder on this machine into a dataset
// that exists, as `shoal dataset upload` does: one stream, each file with
// the split and label its path gives. The server validates every image and
// stores identical bytes once; the response counts what was added, and
// says why each refused file was refused. A folder with no file in its
// layout fails with ErrInvalidArgument, saying what it holds, before
// anything is sent.
func (c *Client) UploadDir(ctx context.Context, dataset, dir string, opts ...UploadOption) (*datasetpb.UploadImagesResponse, error) {
	u := uploadOptions(opts)
	if err := u.layout.Validate(); err != nil {
		return nil, &Error{Code: codes.InvalidArgument, Message: err.Error()}
	}
	scan, err := upload.ScanFolder(dir, u.layout)
	if err != nil {
		return nil, err
	}
	if len(scan.Files) == 0 {
		return nil, toError("", scan.NothingToUpload(upload.Hints{
			AddSplit:  "upload it with client.Split(datasetpb.Split_SPLIT_TRAIN) (and client.TestFraction(0.2) to hold out a test split)",
			DropSplit: "needs no client.Split",
		}))
	}
	if u.skipped != nil {
		for _, p := range scan.Skipped {
			u.skipped(p)
		}
	}
	var sent func(int)
	if u.progress != nil {
		total := int64(len(scan.Files))
		sent = func(n int) { u.progress(int64(n), total) }
	}
	return upload.Folder(ctx, c.dataset, dataset, scan.Files, sent)
}

// UploadArchive uploads a .zip, .tar or .tar.gz archive laid out
// split/Label/file into a dataset that exists; the server unpacks it.
// Split and TestFraction do not apply to archives.
func (c *Client) UploadArchive(ctx context.Context, dataset, path string, opts ...UploadOption) (*datasetpb.UploadImagesResponse, error) {
	u := uploadOptions(opts)
	if u.layout != (upload.Layout{}) {
		return nil, &Error{Code: codes.InvalidArgument, Message: "Split and TestFraction apply to folders; an archive must be laid out split/Label/file"}
	}
	if !upload.IsArchive(path) {
		return nil, &Error{Code: codes.InvalidArgument, Message: path + ": not a .zip, .tar or .tar.gz archive"}
	}
	var sent func(int64)
	if u.progress != nil {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		sent = func(n int64) { u.progress(n, fi.Size()) }
	}
	return upload.Archive(ctx, c.dataset, dataset, path, sent)
}
