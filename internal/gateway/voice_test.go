package gateway

import (
	"net/url"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

func TestVoiceWritesIntegersAsNumbers(t *testing.T) {
	v := newVoice()
	b, err := v.Marshal(&datasetpb.GetDatasetStatsResponse{ImageCount: 1306, TotalBytes: 1 << 60})
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"imageCount":1306`, `"totalBytes":"1152921504606846976"`} {
		if !strings.Contains(got, want) {
			t.Errorf("Marshal = %s; want it to contain %s (numbers up to 2^53 exactly, strings beyond)", got, want)
		}
	}
	// A server stream's line wraps the message in "result", in the map
	// grpc-gateway's runtime.ForwardResponseStream hands the marshaler.
	b, err = v.Marshal(map[string]any{"result": &datasetpb.ImportImagesResponse{Event: &datasetpb.ImportImagesResponse_Done{
		Done: &datasetpb.ImportCounts{Seen: 3, Added: 2}}}})
	if err != nil || !strings.Contains(string(b), `"added":2`) || !strings.Contains(string(b), `"result":`) {
		t.Errorf("Marshal(stream line) = %s, %v; want result.done.added as a number", b, err)
	}
}

func TestVoiceReadsBothIntegerFormsAndShortEnums(t *testing.T) {
	v := newVoice()
	for _, body := range []string{
		`{"dataset":"d","split":"train","pageSize":5}`,
		`{"dataset":"d","split":"SPLIT_TRAIN","pageSize":"5"}`,
		`{"dataset":"d","split":"Train","page_size":5}`,
	} {
		var req datasetpb.ListImagesRequest
		if err := v.Unmarshal([]byte(body), &req); err != nil || req.GetSplit() != datasetpb.Split_SPLIT_TRAIN || req.GetPageSize() != 5 {
			t.Errorf("Unmarshal(%s) = %v, %v; want split TRAIN, page size 5", body, &req, err)
		}
	}
	var spec trainerpb.StartTrainingRequest
	if err := v.Unmarshal([]byte(`{"spec":{"dataset":"d","optimizer":"adamw","promotion":"if_better"}}`), &spec); err != nil ||
		spec.GetSpec().GetOptimizer() != trainerpb.Optimizer_OPTIMIZER_ADAMW || spec.GetSpec().GetPromotion() != trainerpb.PromotionPolicy_PROMOTION_POLICY_IF_BETTER {
		t.Errorf("Unmarshal(short nested enums) = %v, %v", &spec, err)
	}
	var bad datasetpb.ListImagesRequest
	if err := v.Unmarshal([]byte(`{"split":"nonsense"}`), &bad); err == nil {
		t.Errorf("Unmarshal(unknown enum value) = nil error; want one")
	}
}

func TestQueryParserTakesShortEnums(t *testing.T) {
	var req datasetpb.ListImagesRequest
	q := url.Values{"split": {"train"}, "label": {"Bag"}, "page_size": {"20"}}
	if err := (voiceQueryParser{}).Parse(&req, q, utilities.NewDoubleArray(nil)); err != nil ||
		req.GetSplit() != datasetpb.Split_SPLIT_TRAIN || req.GetPageSize() != 20 || req.GetLabel() != "Bag" {
		t.Errorf("Parse(split=train) = %v, %v", &req, err)
	}
	err := (voiceQueryParser{}).Parse(&datasetpb.ListImagesRequest{}, url.Values{"split": {"nope"}}, utilities.NewDoubleArray(nil))
	if err == nil || !strings.Contains(err.Error(), "split=train") {
		t.Errorf("Parse(split=nope) = %v; want an error that names the short form", err)
	}
}

// A body that is not UTF-8 is refused, not stored with U+FFFD in place of
// the bytes that were sent.
func TestVoiceRefusesJSONThatIsNotUTF8(t *testing.T) {
	v := newVoice()
	var req datasetpb.UploadImagesRequest
	err := v.Unmarshal([]byte(`{"file":{"split":"train","label":"Caf`+"\xe9"+`","fileName":"a.png"}}`), &req)
	if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("Unmarshal(a Latin-1 label) = %v (label %q); want an error saying it is not UTF-8", err, req.GetFile().GetLabel())
	}
	if err := v.Unmarshal([]byte(`{"file":{"split":"train","label":"Café 🐟","fileName":"a.png"}}`), &req); err != nil || req.GetFile().GetLabel() != "Café 🐟" {
		t.Errorf("Unmarshal(a UTF-8 label) = %v, %q; want it as sent", err, req.GetFile().GetLabel())
	}
}
