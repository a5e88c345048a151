package bench

import (
	"fmt"
	"net"

	"github.com/shoalml/shoal/internal/ml"
)

// ExportUntrained exports a freshly initialised network of the named
// architecture as the Trainer would export it after training (same graph,
// batch-dynamic, softmax output): what an inference benchmark needs from a
// model is its compute, not its accuracy. ortLibrary is ONNX Runtime's
// shared library.
func ExportUntrained(ortLibrary, arch string, shape ml.InputShape, classes int, seed int64) ([]byte, error) {
	a, err := ml.LookupArchitecture(arch)
	if err != nil {
		return nil, err
	}
	backend, err := ml.NewBackend("")
	if err != nil {
		return nil, err
	}
	defer backend.Finalize()
	mean, std := make([]float32, shape.Channels), make([]float32, shape.Channels)
	for i := range mean {
		mean[i], std[i] = 0.5, 0.25
	}
	m, err := ml.NewModel(backend, a, shape, classes, mean, std, seed)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// Running the graph once creates and initialises the variables.
	if _, err := m.Probabilities(make([]float32, shape.Size())); err != nil {
		return nil, fmt.Errorf("initialising %s: %w", arch, err)
	}
	return m.ExportONNX(ortLibrary)
}

// FreePorts asks the kernel for n free TCP ports on 127.0.0.1. They are
// released before returning, so another process could take one first; the
// benchmark script starts the server right away.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
