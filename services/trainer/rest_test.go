package trainer_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// TestREST: jobs through the gateway; WatchJob is newline-delimited JSON.
func TestREST(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{noRun: true})
	gw, err := gateway.New(t.Context(), gateway.Conns{Trainer: e.conn})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/v1/jobs", `{"spec":{"dataset":"shapes","epochs":-2}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "spec.epochs") {
		t.Errorf("POST /v1/jobs (epochs -2) = %d %s; want 400 naming spec.epochs", code, body)
	}
	code, body = post("/v1/jobs", `{"spec":{"dataset":"shapes","epochs":1,"promotion":"PROMOTION_POLICY_IF_BETTER"}}`)
	var started trainerpb.StartTrainingResponse
	if code != http.StatusOK || protojson.Unmarshal([]byte(body), &started) != nil || started.GetJob().GetState() != trainerpb.JobState_JOB_STATE_QUEUED {
		t.Fatalf("POST /v1/jobs = %d %s; want a queued job", code, body)
	}
	id := started.GetJob().GetId()
	if code, body = post("/v1/jobs/"+id+":cancel", `{}`); code != http.StatusOK || !strings.Contains(body, "JOB_STATE_CANCELLED") {
		t.Errorf("POST /v1/jobs/%s:cancel = %d %s; want CANCELLED", id, code, body)
	}

	resp, err := http.Get(srv.URL + "/v1/jobs/" + id + ":watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var states []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("watch line %q: %v", sc.Text(), err)
		}
		var ev trainerpb.WatchJobResponse
		if err := protojson.Unmarshal(line.Result, &ev); err != nil {
			t.Fatalf("watch line %q: %v", sc.Text(), err)
		}
		states = append(states, ev.GetState().GetState().String())
	}
	if strings.Join(states, ",") != "JOB_STATE_QUEUED,JOB_STATE_CANCELLED" {
		t.Errorf("GET /v1/jobs/%s:watch states = %v; want QUEUED, CANCELLED", id, states)
	}

	resp, err = http.Get(srv.URL + "/v1/architectures")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"defaultImageSize":28`) {
		t.Errorf("GET /v1/architectures = %d %s", resp.StatusCode, b)
	}
}
