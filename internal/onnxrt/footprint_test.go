package onnxrt_test

import (
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// TestFootprintCountsWhatSessionsHold opens real sessions of classifiers
// whose weights differ in size and checks that Footprint sees at least the
// weights, grows with them, and measures the same again.
func TestFootprintCountsWhatSessionsHold(t *testing.T) {
	rt := onnxtest.Runtime(t)
	measure := func(side int64) (held, weights int64, closeAll func()) {
		m := onnxtest.Classifier{Channels: 3, Height: side, Width: side, Classes: 10}
		onnx := m.Bytes()
		info, err := rt.Inspect(onnx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := info.Classifier("", "", onnxrt.Image{Channels: 3, Height: int(side), Width: int(side)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var sessions []*onnxrt.Session
		held, err = onnxrt.Footprint(func() error {
			for range 2 {
				s, err := rt.NewSession(onnx, c, []int{1, 4}, onnxrt.SessionOptions{IntraOpThreads: 1})
				if err != nil {
					return err
				}
				sessions = append(sessions, s)
				if _, err := s.Run(4); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Footprint() = %v", err)
		}
		return held, 2 * 4 * 3 * side * side * 10, func() {
			for _, s := range sessions {
				s.Close()
			}
		}
	}
	small, smallWeights, closeSmall := measure(64)
	closeSmall()
	large, largeWeights, closeLarge := measure(256)
	if small < smallWeights || large < largeWeights {
		t.Fatalf("Footprint() = %d and %d bytes; want at least the weights of the two sessions, %d and %d", small, large, smallWeights, largeWeights)
	}
	if grew := large - small; grew < (largeWeights-smallWeights)*9/10 {
		t.Errorf("Footprint() grew by %d bytes for %d more bytes of weights", grew, largeWeights-smallWeights)
	}
	closeLarge()
	// What the closed sessions gave back is reused: opening the same again
	// measures the same.
	again, _, closeAgain := measure(256)
	defer closeAgain()
	if again < large*9/10 || again > large*11/10 {
		t.Errorf("Footprint() after closing and opening again = %d; want about %d", again, large)
	}
	t.Logf("2 sessions with %d bytes of weights each hold %d bytes; with %d, %d", smallWeights/2, small, largeWeights/2, large)
}
