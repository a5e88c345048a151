package app_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/app/apptest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/webui"
)

// defaults returns the configuration with every default, on :0 ports and
// storage under a temporary directory.
func defaults(t *testing.T) app.Config { return apptest.Defaults(t) }

// shared points cfg at storage several processes can share: a fresh
// PostgreSQL database and an S3 bucket (the real S3 server when the
// test environment names one, an in-process one otherwise).
func shared(t *testing.T, cfg *app.Config) {
	t.Helper()
	cfg.DB = dbtest.Config(t, db.Postgres)
	cfg.Blob.Backend = "s3"
	cfg.Blob.S3.Bucket = "shoal-app-test"
	cfg.Blob.S3.CreateBucket = true
	cfg.Blob.S3.Insecure = true
	if ep := os.Getenv("SHOAL_TEST_S3_ENDPOINT"); ep != "" {
		cfg.Blob.S3.Endpoint = ep
		cfg.Blob.S3.AccessKey = os.Getenv("SHOAL_TEST_S3_ACCESS_KEY")
		cfg.Blob.S3.SecretKey = os.Getenv("SHOAL_TEST_S3_SECRET_KEY")
		return
	}
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	cfg.Blob.S3.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	cfg.Blob.S3.AccessKey, cfg.Blob.S3.SecretKey = "test", "test-secret"
}

type running struct {
	grpc *grpc.ClientConn
	addr string // the gRPC listener's address
	http string
	stop func() error
	// admin is the admin token the process bootstrapped ("" when it does
	// not run the auth service).
	admin string
}

// post sends a JSON body with the admin token, as a user's script would.
func (r running) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.http+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// start runs an App on :0 listeners until the test ends, once it serves.
func start(t *testing.T, cfg app.Config) running {
	t.Helper()
	p := apptest.Start(t, cfg, nil)
	if !p.App.Ready() {
		t.Fatalf("Ready() = false after health turned SERVING; want true")
	}
	return running{grpc: p.Conn, addr: p.GRPCAddr, http: p.HTTPURL, stop: p.Stop, admin: p.Admin}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var grpcServices = map[string][]string{
	app.Auth:      {"shoal.auth.v1.AuthService"},
	app.Dataset:   {"shoal.dataset.v1.DatasetService"},
	app.Trainer:   {"shoal.trainer.v1.TrainerService"},
	app.Registry:  {"shoal.registry.v1.RegistryService"},
	app.Inference: {"shoal.inference.v1.InferenceService", "inference.GRPCInferenceService"},
}

func TestEveryTargetStartsAndAnswersHealth(t *testing.T) {
	for _, target := range []string{"all", "auth", "dataset", "trainer", "registry", "inference", "gateway", "dataset,registry"} {
		t.Run(target, func(t *testing.T) {
			cfg := defaults(t)
			cfg.Target = target
			modules, err := app.ParseTarget(target)
			if err != nil {
				t.Fatal(err)
			}
			if target != "all" {
				shared(t, &cfg)
				cfg.Gate.ServiceToken = strings.Repeat("s", 32)
				for _, s := range app.Services {
					// Dialing is lazy; these services are never called here.
					*cfg.Clients.Addresses[s] = "127.0.0.1:1"
				}
			}
			r := start(t, cfg)

			health := healthpb.NewHealthClient(r.grpc)
			for _, m := range modules {
				for _, name := range grpcServices[m] {
					resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
					if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
						t.Errorf("Health.Check(%s) = %v, %v; want SERVING", name, resp.GetStatus(), err)
					}
				}
			}
			for _, s := range app.Services {
				if slices.Contains(modules, s) {
					continue
				}
				for _, name := range grpcServices[s] {
					if _, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name}); err == nil {
						t.Errorf("Health.Check(%s) = nil error in --target=%s; want NotFound (not served here)", name, target)
					}
				}
			}
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				if code, body := httpGet(t, r.http+path); code != http.StatusOK {
					t.Errorf("GET %s = %d %q; want 200", path, code, body)
				}
			}
		})
	}
}

func TestReflectionListsEveryService(t *testing.T) {
	r := start(t, defaults(t))
	stream, err := reflectionpb.NewServerReflectionClient(r.grpc).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.GetName())
	}
	want := []string{
		"grpc.health.v1.Health",
		"grpc.reflection.v1.ServerReflection",
		"inference.GRPCInferenceService",
		"shoal.dataset.v1.DatasetService",
		"shoal.inference.v1.InferenceService",
		"shoal.registry.v1.RegistryService",
		"shoal.trainer.v1.TrainerService",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("reflection ListServices = %v; missing %s", got, w)
		}
	}
}

func TestShutdownTurnsHealthNotServing(t *testing.T) {
	r := start(t, defaults(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := healthpb.NewHealthClient(r.grpc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch status = %v, %v; want SERVING", resp.GetStatus(), err)
	}
	done := make(chan error, 1)
	go func() { done <- r.stop() }()
	// The health service reports NOT_SERVING before the server goes away,
	// so clients and load balancers move off first.
	resp, err := stream.Recv()
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch status after stop = %v; want NOT_SERVING", resp.GetStatus())
	}
	cancel() // a watcher that saw NOT_SERVING goes away, letting the server drain
	if err := <-done; err != nil {
		t.Errorf("Run() = %v; want nil", err)
	}
}

func TestRESTGoesThroughGRPC(t *testing.T) {
	r := start(t, defaults(t))
	resp, err := http.Get(r.http + "/v2/health/live")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"live":true`) {
		t.Errorf("GET /v2/health/live = %d %s; want 200 {\"live\":true}", resp.StatusCode, body)
	}
	// The request id set by the gRPC interceptor comes back as a header,
	// which proves the call passed through the gRPC server.
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("GET /v2/health/live: no X-Request-Id header; want the id from the gRPC interceptor")
	}
	code, body2 := httpGet(t, r.http+"/v1/no-such-thing")
	if code != http.StatusNotFound {
		t.Errorf("GET /v1/no-such-thing = %d %s; want 404", code, body2)
	}
}

// The web console shares the HTTP server with the API: its pages answer at
// / and at client-side routes, and the API's paths still reach the API.
func TestConsoleBesideTheAPI(t *testing.T) {
	r := start(t, defaults(t))
	wantCode, wantBody := http.StatusNotFound, "make build" // a binary built without the console
	if webui.App() != nil {
		wantCode, wantBody = http.StatusOK, `<div id="root">`
	}
	for _, path := range []string{"/", "/models", "/training?job=1"} {
		if code, body := httpGet(t, r.http+path); code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("GET %s = %d %q; want %d with %q", path, code, body, wantCode, wantBody)
		}
	}
	resp, err := http.Post(r.http+"/predict", "text/plain", strings.NewReader("not a form"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"message"`) {
		t.Errorf("POST /predict (no form) = %d %s; want the API's 400 JSON error", resp.StatusCode, body)
	}
	if code, body := httpGet(t, r.http+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q; want 200 ok", code, body)
	}
	// The API's description comes from the gateway, not the console.
	if code, body := httpGet(t, r.http+"/openapi.json"); code != http.StatusOK || !strings.Contains(body, `"swagger": "2.0"`) {
		t.Errorf("GET /openapi.json = %d %.80q; want 200 with the OpenAPI document", code, body)
	}
}

// A REST upload stream may carry more than the message limit in all: the
// HTTP server bounds each of its lines, not the body.
func TestRESTUploadStreamOverTheBodyLimit(t *testing.T) {
	cfg := defaults(t)
	cfg.Server.MaxMessageBytes = 4 << 20
	r := start(t, cfg)
	post := func(path, body string) (int, string) { t.Helper(); return r.post(t, path, body) }
	if code, body := post("/v1/datasets", `{"name":"big"}`); code != http.StatusOK {
		t.Fatalf("POST /v1/datasets = %d %s", code, body)
	}

	// A 6.6 MiB tar of noise PNGs (which do not compress), in 1 MiB chunks.
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 9 {
		img := image.NewNRGBA(image.Rect(0, 0, 480, 480))
		for j := range img.Pix {
			img.Pix[j] = byte(rng.Uint32())
		}
		var png_ bytes.Buffer
		if err := png.Encode(&png_, img); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("train/noise/%d.png", i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(png_.Len())}); err != nil {
			t.Fatal(err)
		}
		tw.Write(png_.Bytes())
	}
	tw.Close()
	if tarball.Len() <= 6<<20 {
		t.Fatalf("archive of %d bytes; want it over the 4 MiB limit with base64", tarball.Len())
	}
	var stream strings.Builder
	stream.WriteString(`{"header":{"dataset":"big"}}` + "\n")
	for off := 0; off < tarball.Len(); off += 1 << 20 {
		chunk := tarball.Bytes()[off:min(off+1<<20, tarball.Len())]
		fmt.Fprintf(&stream, `{"archiveChunk":{"fileName":"noise.tar","data":%q}}`+"\n", base64.StdEncoding.EncodeToString(chunk))
	}
	code, body := post("/v1/images:upload", stream.String())
	if code != http.StatusOK || !strings.Contains(body, `"added":9`) {
		t.Errorf("POST /v1/images:upload of %d bytes (limit 4 MiB) = %d %s; want 200 with 9 added", stream.Len(), code, body)
	}

	// One line over twice the limit is refused, with the reason.
	code, body = post("/v1/images:upload", `{"header":{"dataset":"big"}}`+"\n"+`{"archiveChunk":{"fileName":"x.tar","data":"`+strings.Repeat("A", 9<<20)+`"}}`+"\n")
	if code != http.StatusBadRequest || !strings.Contains(body, "a message of the request stream is over") {
		t.Errorf("POST /v1/images:upload with a 9 MiB line = %d %.300s; want 400 naming the message limit", code, body)
	}
	// Other routes keep the body limit.
	code, body = post("/v1/datasets", `{"name":"`+strings.Repeat("x", 5<<20)+`"}`)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /v1/datasets of 5 MiB = %d %.200s; want 413", code, body)
	}
}

// A line of an upload stream within the stream's per-line bound may still
// decode to a message over the gRPC limit: that is a 413 saying so in the
// REST API's words (not grpc-go's, not a 429 that asks for a retry), and
// saying that the files before it may have been stored.
func TestRESTUploadMessageOverTheLimit(t *testing.T) {
	cfg := defaults(t)
	cfg.Server.MaxMessageBytes = 4 << 20
	r := start(t, cfg)
	if code, body := r.post(t, "/v1/datasets", `{"name":"big"}`); code != http.StatusOK {
		t.Fatalf("POST /v1/datasets = %d %s", code, body)
	}
	line := fmt.Sprintf(`{"file":{"split":"train","label":"Cat","fileName":"big.png","content":"%s"}}`, base64.StdEncoding.EncodeToString(make([]byte, 5<<20)))
	req, err := http.NewRequest(http.MethodPost, r.http+"/v1/images:upload", strings.NewReader(`{"header":{"dataset":"big"}}`+"\n"+line+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Retry-After") != "" ||
		!strings.Contains(string(b), "over the server's limit of 4194304 bytes (--grpc.max-message-bytes)") || !strings.Contains(string(b), "may have been stored") {
		t.Errorf("POST /v1/images:upload with a 5 MiB file (limit 4 MiB) = %d (Retry-After %q) %.400s; want 413 saying the message is over the limit",
			resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
