package inference_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/services/inference"
)

// TestReportsWhatItServes: the replica tells the Registry which version it
// serves for each alias it follows, that it loads a promoted one, why a
// promoted one failed to load (and that the previous keeps serving), and
// that it leaves when it stops.
func TestReportsWhatItServes(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) { c.ReplicaName = "replica-a" }})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersionBytes(t, "pets", 2, newTestModel(0), []byte("not onnx"))
	e.addVersion(t, "pets", 3, newTestModel(1))
	production := func(rep *registrypb.ReportServingRequest) *registrypb.AliasServing {
		i := slices.IndexFunc(rep.GetAliases(), func(a *registrypb.AliasServing) bool { return a.GetModel() == "pets" && a.GetAlias() == "production" })
		if i < 0 {
			return nil
		}
		return rep.GetAliases()[i]
	}
	at := func(version, target int64, state registrypb.ServingState) func(*registrypb.ReportServingRequest) bool {
		return func(rep *registrypb.ReportServingRequest) bool {
			a := production(rep)
			return a.GetVersion() == version && a.GetTargetVersion() == target && a.GetState() == state
		}
	}

	// The default model's production alias is followed before it exists.
	rep, next := e.reg.waitReport(t, 0, "of pets@production", func(r *registrypb.ReportServingRequest) bool { return production(r) != nil })
	if rep.GetReplica() != "replica-a" || rep.GetLease().AsDuration() != defaultConfig().ReportLease || rep.GetLeaving() {
		t.Errorf("first report = %v; want replica-a with the configured lease", rep)
	}

	e.reg.setAlias("pets", "production", 1)
	_, next = e.reg.waitReport(t, next, "serving v1", at(1, 1, registrypb.ServingState_SERVING_STATE_SERVING))
	if got := loaded(t, e); !slices.Equal(got, []int64{1}) {
		t.Errorf("loaded after the report of v1 = %v; want [1]", got)
	}

	e.reg.setAlias("pets", "production", 2)
	rep, next = e.reg.waitReport(t, next, "of v2's failure", at(1, 2, registrypb.ServingState_SERVING_STATE_FAILED))
	if msg := production(rep).GetError(); !strings.Contains(msg, "version 2") || !strings.Contains(msg, "cannot be served") {
		t.Errorf("reported error of v2 = %q; want why version 2 cannot be served", msg)
	}

	e.reg.setAlias("pets", "production", 3)
	rep, next = e.reg.waitReport(t, next, "serving v3", at(3, 3, registrypb.ServingState_SERVING_STATE_SERVING))
	if production(rep).GetError() != "" {
		t.Errorf("report of v3 = %v; want no error", production(rep))
	}

	// A version whose artifact was missing loads once the artifact is back
	// and an alias names it again.
	good := newTestModel(2)
	onnx := good.c.Bytes()
	e.addVersionBytes(t, "pets", 4, good, onnx)
	sum := sha256.Sum256(onnx)
	key := "artifacts/" + hex.EncodeToString(sum[:])
	if err := e.blobs.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	e.reg.setAlias("pets", "production", 4)
	_, next = e.reg.waitReport(t, next, "of v4's failure", at(3, 4, registrypb.ServingState_SERVING_STATE_FAILED))
	if err := e.blobs.Put(t.Context(), key, bytes.NewReader(onnx), int64(len(onnx))); err != nil {
		t.Fatal(err)
	}
	e.reg.setAlias("pets", "production", 3)
	_, next = e.reg.waitReport(t, next, "serving v3 again", at(3, 3, registrypb.ServingState_SERVING_STATE_SERVING))
	e.reg.setAlias("pets", "production", 4)
	_, next = e.reg.waitReport(t, next, "serving v4 once restored", at(4, 4, registrypb.ServingState_SERVING_STATE_SERVING))

	e.stop()
	rep, _ = e.reg.waitReport(t, next, "of leaving", func(r *registrypb.ReportServingRequest) bool { return r.GetLeaving() })
	if rep.GetReplica() != "replica-a" {
		t.Errorf("leaving report = %v; want replica-a", rep)
	}
}
