package ml

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// StratifiedSplit splits image indices 0..len(labels)-1 into training and
// validation sets, taking round(valFraction * count) images of every label
// for validation (at least one, and never all of a label's images), chosen
// by a shuffle seeded with seed. Both returned slices are sorted.
func StratifiedSplit(labels []int32, valFraction float64, seed int64) (trainIdx, valIdx []int, err error) {
	if !(valFraction > 0 && valFraction < 1) {
		return nil, nil, fmt.Errorf("validation fraction must be between 0 and 1 (exclusive), got %g", valFraction)
	}
	byLabel := map[int32][]int{}
	for i, l := range labels {
		byLabel[l] = append(byLabel[l], i)
	}
	keys := make([]int32, 0, len(byLabel))
	for l := range byLabel {
		keys = append(keys, l)
	}
	slices.Sort(keys) // map order is random; the split must not be.
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5b1))
	for _, l := range keys {
		idx := byLabel[l]
		if len(idx) < 2 {
			return nil, nil, fmt.Errorf("label %d has %d image(s); stratified validation needs at least 2 per label", l, len(idx))
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		nVal := min(max(int(math.Round(valFraction*float64(len(idx)))), 1), len(idx)-1)
		valIdx = append(valIdx, idx[:nVal]...)
		trainIdx = append(trainIdx, idx[nVal:]...)
	}
	slices.Sort(trainIdx)
	slices.Sort(valIdx)
	return trainIdx, valIdx, nil
}
