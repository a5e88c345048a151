package ml

import (
	"slices"
	"testing"
)

func TestStratifiedSplit(t *testing.T) {
	// 10 images of label 0, 20 of label 1, 3 of label 2.
	var labels []int32
	for i, n := range []int{10, 20, 3} {
		for range n {
			labels = append(labels, int32(i))
		}
	}
	trainIdx, valIdx, err := StratifiedSplit(labels, 0.2, 42)
	if err != nil {
		t.Fatalf("StratifiedSplit() = %v", err)
	}
	count := func(idx []int) map[int32]int {
		c := map[int32]int{}
		for _, i := range idx {
			c[labels[i]]++
		}
		return c
	}
	wantVal := map[int32]int{0: 2, 1: 4, 2: 1}
	gotVal := count(valIdx)
	for l, n := range wantVal {
		if gotVal[l] != n {
			t.Errorf("validation has %d images of label %d; want %d", gotVal[l], l, n)
		}
	}
	all := append(slices.Clone(trainIdx), valIdx...)
	slices.Sort(all)
	if len(all) != len(labels) || slices.Compact(all)[len(labels)-1] != len(labels)-1 {
		t.Errorf("train+validation = %v; want every index exactly once", all)
	}
	// Same seed, same split; another seed, (almost surely) another.
	t2, v2, _ := StratifiedSplit(labels, 0.2, 42)
	if !slices.Equal(trainIdx, t2) || !slices.Equal(valIdx, v2) {
		t.Error("StratifiedSplit with the same seed gave a different split")
	}
	if _, v3, _ := StratifiedSplit(labels, 0.2, 43); slices.Equal(valIdx, v3) {
		t.Error("StratifiedSplit with another seed gave the same split")
	}

	for _, tc := range []struct {
		name     string
		labels   []int32
		fraction float64
	}{
		{"zero fraction", labels, 0},
		{"whole set", labels, 1},
		{"label with one image", []int32{0, 0, 1}, 0.5},
	} {
		if _, _, err := StratifiedSplit(tc.labels, tc.fraction, 1); err == nil {
			t.Errorf("%s: StratifiedSplit() = nil error; want error", tc.name)
		}
	}
}
