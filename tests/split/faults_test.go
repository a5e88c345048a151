package split

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

// promoteAndPredict promotes the version with `shoal models promote
// --wait`, which returns once both inference replicas serve it (each is
// asked directly right after), then predicts over REST, the CLI and
// grpcurl, and checks that grpcurl lists every service by reflection.
func (top *topology) promoteAndPredict(ctx context.Context, t *testing.T, demo string) [][]byte {
	t.Helper()
	out := top.mustCLI(ctx, "models", "promote", "fashion", "1", "--wait", "--timeout", "2m")
	for _, p := range top.procs["inference"] {
		if v := p.served(ctx, t, "fashion"); v != 1 {
			t.Fatalf("%s serves fashion v%d right after promote --wait returned:\n%s\nwant v1", p.name, v, out)
		}
	}

	var samples [][]byte
	var files []string
	for _, label := range []string{"Bag", "Trouser", "Sneaker"} {
		matches, _ := filepath.Glob(filepath.Join(demo, "test", label, "*.png"))
		if len(matches) == 0 {
			t.Fatalf("no test image of %s in the demo tree", label)
		}
		b, err := os.ReadFile(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		samples, files = append(samples, b), append(files, matches[0])
	}
	answer, err := predictREST(ctx, "http://"+top.gw.httpAddr, samples[0])
	if err != nil || answer.Version != 1 || answer.Prediction == "" {
		t.Errorf("POST /predict through the gateway = %+v, %v; want a prediction of version 1", answer, err)
	}
	if out := top.mustCLI(ctx, append([]string{"predict"}, files...)...); !strings.Contains(out, "fashion v1") {
		t.Errorf("shoal predict through the gateway printed:\n%s\nwant answers of fashion v1", out)
	}

	list, err := top.grpcurl(ctx, top.gw.grpcAddr, "list")
	if err != nil {
		t.Fatalf("grpcurl list through the gateway: %v\n%s", err, list)
	}
	for _, s := range []string{"grpc.health.v1.Health", "inference.GRPCInferenceService", "shoal.auth.v1.AuthService",
		"shoal.dataset.v1.DatasetService", "shoal.inference.v1.InferenceService", "shoal.registry.v1.RegistryService", "shoal.trainer.v1.TrainerService"} {
		if !slices.Contains(strings.Fields(list), s) {
			t.Errorf("grpcurl list through the gateway = %q; missing %s", list, s)
		}
	}
	body := fmt.Sprintf(`{"images":[%q],"topK":3}`, base64.StdEncoding.EncodeToString(samples[0]))
	out, err = top.grpcurl(ctx, "-d", body, top.gw.grpcAddr, "shoal.inference.v1.InferenceService/Predict")
	if err != nil || !strings.Contains(out, `"labels"`) {
		t.Errorf("grpcurl Predict through the gateway: %v\n%s", err, out)
	}
	return samples
}

// restAnswer is the part of POST /predict's answer the test reads.
type restAnswer struct {
	Prediction string `json:"prediction"`
	Version    int64  `json:"version"`
}

// predictREST posts an image to /predict, anonymously (the predict scope
// is open by default), as the original API's clients do.
func predictREST(ctx context.Context, base string, image []byte) (restAnswer, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "image.png")
	if err != nil {
		return restAnswer{}, err
	}
	_, _ = fw.Write(image)
	_ = mw.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/predict", &body)
	if err != nil {
		return restAnswer{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return restAnswer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return restAnswer{}, fmt.Errorf("POST /predict = %d %s", resp.StatusCode, b)
	}
	var a restAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("POST /predict answered %s: %w", b, err)
	}
	return a, nil
}

// predictLoad sends predictions through the gateway, anonymously, over
// gRPC and REST, until ctx ends.
func (top *topology) predictLoad(ctx context.Context, t *testing.T, samples [][]byte) (grpcCount, restCount *counter, wait func()) {
	t.Helper()
	anon, err := grpc.NewClient(top.gw.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := inferencepb.NewInferenceServiceClient(anon)
	grpcCount, waitGRPC := load(ctx, 4, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := client.Predict(cctx, &inferencepb.PredictRequest{Images: samples, TopK: 1})
		if err == nil && len(resp.GetResults()) != len(samples) {
			err = fmt.Errorf("Predict answered %d results for %d images", len(resp.GetResults()), len(samples))
		}
		return err
	})
	restCount, waitREST := load(ctx, 2, func(ctx context.Context) error {
		_, err := predictREST(ctx, "http://"+top.gw.httpAddr, samples[1])
		return err
	})
	return grpcCount, restCount, func() { waitGRPC(); waitREST(); anon.Close() }
}

// killInferenceUnderLoad kills one inference replica (SIGKILL) while
// clients predict through the gateway: none of their requests fails.
func (top *topology) killInferenceUnderLoad(ctx context.Context, t *testing.T, samples [][]byte) {
	t.Helper()
	lctx, stop := context.WithCancel(ctx)
	grpcCount, restCount, wait := top.predictLoad(lctx, t, samples)
	time.Sleep(2 * time.Second) // load on both replicas
	before, _ := grpcCount.result()
	victim := top.procs["inference"][0]
	victim.kill()
	t.Logf("killed %s (%s) under load, after %d gRPC predictions", victim.name, victim.killing(), before)
	time.Sleep(4 * time.Second) // load on the survivor alone
	stop()
	wait()
	gOK, gFail := grpcCount.result()
	rOK, rFail := restCount.result()
	t.Logf("under the kill: %d gRPC Predict calls (%d after the kill) and %d REST /predict calls through the gateway; %d and %d failed",
		gOK, gOK-before, rOK, len(gFail), len(rFail))
	if len(gFail)+len(rFail) > 0 {
		t.Errorf("requests failed while an inference replica was killed: gRPC %v; REST %v", first(gFail, 5), first(rFail, 5))
	}
	if gOK-before == 0 || rOK == 0 {
		t.Errorf("no prediction succeeded after the kill (gRPC %d, REST %d)", gOK-before, rOK)
	}
}

func first(errs []error, n int) []error { return errs[:min(n, len(errs))] }

// restartPostgres stops PostgreSQL for a few seconds while predictions go
// on, then starts it again: no prediction fails (Inference needs no
// database), the processes that use the database turn unready and ready
// again by themselves, and the services that write it work again without
// a restart of Shoal, through the gateway.
func (top *topology) restartPostgres(ctx context.Context, t *testing.T, samples [][]byte) {
	t.Helper()
	lctx, stop := context.WithCancel(ctx)
	grpcCount, restCount, wait := top.predictLoad(lctx, t, samples)
	top.pg.stop()
	down := time.Now()
	var users []*proc
	for _, name := range top.order {
		if _, ok := top.compose.Services[name].Environment["SHOAL_DB_DSN"]; ok {
			users = append(users, top.procs[name]...)
		}
	}
	// Readiness says the database is away (it is what an orchestrator
	// acts on).
	for _, p := range users {
		if !p.running() {
			continue // the killed trainer
		}
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := waitUnready(wctx, "http://"+p.httpAddr+"/readyz")
		cancel()
		if err != nil {
			t.Errorf("%s with PostgreSQL down: %v", p.name, err)
		}
	}
	time.Sleep(max(0, 3*time.Second-time.Since(down)))
	top.pg.start()
	t.Logf("PostgreSQL was down %.1fs", time.Since(down).Seconds())
	back := time.Now()
	for _, p := range users {
		if !p.running() {
			continue
		}
		if err := waitReady(ctx, "http://"+p.httpAddr+"/readyz"); err != nil {
			t.Fatalf("%s after PostgreSQL came back: %v", p.name, err)
		}
	}
	t.Logf("every process using PostgreSQL was ready again %.1fs after it came back", time.Since(back).Seconds())
	stop()
	wait()
	gOK, gFail := grpcCount.result()
	rOK, rFail := restCount.result()
	if len(gFail)+len(rFail) > 0 || gOK == 0 || rOK == 0 {
		t.Errorf("predictions across the PostgreSQL restart: gRPC %d ok, failed %v; REST %d ok, failed %v; want none failed",
			gOK, first(gFail, 5), rOK, first(rFail, 5))
	}

	// Every service that writes the database, through the gateway.
	if code, body := top.rest(ctx, http.MethodPost, "/v1/datasets", `{"name":"after-restart"}`); code != http.StatusOK {
		t.Errorf("POST /v1/datasets after the restart = %d %s; want 200", code, body)
	}
	if _, err := registrypb.NewRegistryServiceClient(top.conn).SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fashion", Alias: "staging", Version: 1}); err != nil {
		t.Errorf("SetAlias through the gateway after the restart = %v", err)
	}
	top.mustCLI(ctx, "tokens", "create", "--name", "after-restart", "--scope", "read")
	out := top.mustCLI(ctx, "train", "--dataset", "fashion", "--epochs", "1", "--model", "after-restart", "--follow")
	if !strings.Contains(out, "registered after-restart version 1") {
		t.Errorf("shoal train --follow after the restart printed:\n%s\nwant 'registered after-restart version 1'", out)
	}
}

// waitUnready polls a readiness URL until it answers 503 naming the
// database.
func waitUnready(ctx context.Context, url string) error {
	var code int
	var body string
	for {
		var err error
		code, body, err = get(ctx, url)
		if err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "db") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s answered %d %q; want 503 naming db: %w", url, code, body, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
