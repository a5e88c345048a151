package jsontree_test

import (
	"encoding/json"
	"testing"

	"github.com/shoalml/shoal/internal/jsontree"
)

func TestRoundTripKeepsOrderAndNumbers(t *testing.T) {
	in := `{"z":1,"a":{"y":"<b>","b":[1,2.50,-3e2,true,null,"x"]},"m":12345678901234567890}`
	v, err := jsontree.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := v.MarshalJSON()
	if err != nil || string(out) != in {
		t.Errorf("round trip = %s, %v; want %s", out, err, in)
	}
	v.Fields["a"].Fields["y"].Scalar = json.Number("7")
	out, _ = v.MarshalJSON()
	if want := `{"z":1,"a":{"y":7,"b":[1,2.50,-3e2,true,null,"x"]},"m":12345678901234567890}`; string(out) != want {
		t.Errorf("after a rewrite = %s; want %s", out, want)
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `1 2`} {
		if _, err := jsontree.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
}
