package inference

import (
	"context"
	"image"
	"testing"

	"github.com/shoalml/shoal/internal/imaging"
)

// SetIdleCheckHook makes s report each idle check's outcome to f; call it
// before Run.
func SetIdleCheckHook(s *Service, f func(model string, version int64, unloaded bool)) {
	s.idleChecked = f
}

// InjectPreprocessHook makes f run before each image's decoding until t
// ends; call it before the service starts.
func InjectPreprocessHook(t testing.TB, f func()) {
	t.Cleanup(func() { decodeImage = imaging.DecodeFor })
	decodeImage = func(data []byte, s imaging.Spec, lim imaging.Limits) (image.Image, imaging.Info, error) {
		f()
		return imaging.Decode(data, lim)
	}
}

// InjectBatchHook makes f run before each batch's sessions until t ends;
// call it before the service starts.
func InjectBatchHook(t testing.TB, f func()) {
	t.Cleanup(func() { runBatch = (*model).run })
	runBatch = func(m *model, ctx context.Context, w int, in [][]float32) ([][]float32, error) {
		f()
		return m.run(ctx, w, in)
	}
}
