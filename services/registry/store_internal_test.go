package registry

import (
	"testing"
)

// A row written by a newer release, whose stored JSON holds a field this
// one does not know, is still read: the field is skipped.
func TestVersionProtoSkipsUnknownStoredFields(t *testing.T) {
	row := versionRow{Number: 3, Labels: `["cat","dog"]`, HyperParameters: "{}",
		InputSpec: `{"channels":3,"height":8,"width":8,"fieldOfANewerRelease":"x"}`,
		Metrics:   `{"testAccuracy":0.5,"anotherNewField":{"a":1}}`, Lineage: "{}"}
	v, err := versionProto("pets", row, nil)
	if err != nil {
		t.Fatalf("versionProto(row with unknown fields) = %v; want it read", err)
	}
	if v.GetInputSpec().GetChannels() != 3 || v.GetMetrics().GetTestAccuracy() != 0.5 {
		t.Errorf("versionProto(...) = %v; want channels 3 and test accuracy 0.5", v)
	}
}
