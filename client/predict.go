package client

import (
	"context"
	"os"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
)

// A PredictOption chooses the model version and the answer's size.
type PredictOption func(*inferencepb.PredictRequest)

// Model asks this model; by default the server's default model
// (--inference.default-model).
func Model(name string) PredictOption {
	return func(r *inferencepb.PredictRequest) { r.Model = name }
}

// Version asks this version of the model; by default its alias.
func Version(v int64) PredictOption {
	return func(r *inferencepb.PredictRequest) { r.Version = v }
}

// Alias asks the version this alias names when no Version is given; by
// default "production".
func Alias(name string) PredictOption {
	return func(r *inferencepb.PredictRequest) { r.Alias = name }
}

// TopK is the number of labels each image's result lists, best first; by
// default 5 (at most the model's number of labels).
func TopK(k int) PredictOption {
	return func(r *inferencepb.PredictRequest) { r.TopK = int32(min(k, 1<<30)) }
}

// Predict classifies encoded images (JPEG, PNG, GIF, WebP, BMP) in one
// request; the server decodes them with the model version's input spec and
// batches them. The response has one result per image, in order, and the
// model and version that answered. An image that does not decode fails
// the call with ErrInvalidArgument, a model or version that does not exist
// with ErrNotFound.
func (c *Client) Predict(ctx context.Context, images [][]byte, opts ...PredictOption) (*inferencepb.PredictResponse, error) {
	req := &inferencepb.PredictRequest{Images: images}
	for _, o := range opts {
		o(req)
	}
	return c.inference.Predict(ctx, req)
}

// PredictFiles reads image files and classifies them as Predict does, in
// one request.
func (c *Client) PredictFiles(ctx context.Context, paths []string, opts ...PredictOption) (*inferencepb.PredictResponse, error) {
	images := make([][]byte, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		images[i] = b
	}
	return c.Predict(ctx, images, opts...)
}
