package ml

import (
	"fmt"
	"math"
)

// ClassMetrics are one class's one-vs-rest scores on an evaluation set.
type ClassMetrics struct {
	Precision, Recall, F1 float64
	Support               int // images whose true label is this class.
}

// Evaluation is a model's performance on a labelled set.
type Evaluation struct {
	Loss     float64 // mean cross-entropy.
	Accuracy float64
	Classes  []ClassMetrics
	// Confusion[t][p] counts images of true class t predicted as p.
	Confusion [][]int
}

// Evaluate runs m on every image of d.
func Evaluate(m *Model, d *Data) (*Evaluation, error) {
	if err := d.Validate(m.NumClasses); err != nil {
		return nil, err
	}
	if d.Shape != m.Shape {
		return nil, fmt.Errorf("images are %s, the model takes %s", d.Shape, m.Shape)
	}
	logits, err := m.Logits(d.Images)
	if err != nil {
		return nil, err
	}
	return EvaluateLogits(logits, d.Labels, m.NumClasses)
}

// EvaluateLogits scores [N*K] logits against N labels.
func EvaluateLogits(logits []float32, labels []int32, k int) (*Evaluation, error) {
	n := len(labels)
	if n == 0 || len(logits) != n*k {
		return nil, fmt.Errorf("%d logits for %d labels and %d classes", len(logits), n, k)
	}
	ev := &Evaluation{Classes: make([]ClassMetrics, k), Confusion: make([][]int, k)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, k)
	}
	var lossSum float64
	correct := 0
	for i, label := range labels {
		row := logits[i*k : (i+1)*k]
		pred, maxV := 0, float64(row[0])
		for j, v := range row {
			if float64(v) > maxV {
				pred, maxV = j, float64(v)
			}
		}
		// log-softmax, shifted by the max for stability.
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - maxV)
		}
		lossSum += math.Log(sum) - (float64(row[label]) - maxV)
		if pred == int(label) {
			correct++
		}
		ev.Confusion[label][pred]++
	}
	ev.Loss = lossSum / float64(n)
	ev.Accuracy = float64(correct) / float64(n)
	for c := range k {
		tp := ev.Confusion[c][c]
		var predicted, actual int
		for o := range k {
			predicted += ev.Confusion[o][c]
			actual += ev.Confusion[c][o]
		}
		cm := ClassMetrics{Support: actual}
		if predicted > 0 {
			cm.Precision = float64(tp) / float64(predicted)
		}
		if actual > 0 {
			cm.Recall = float64(tp) / float64(actual)
		}
		if cm.Precision+cm.Recall > 0 {
			cm.F1 = 2 * cm.Precision * cm.Recall / (cm.Precision + cm.Recall)
		}
		ev.Classes[c] = cm
	}
	return ev, nil
}
