package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/app/apptest"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/tlsfiles/tlstest"
)

// TestSplitDeploymentOverMutualTLS runs three processes of a split
// deployment (auth, registry, dataset and trainer; two Inference replicas
// would be the same; one here; and the gateway) over mutual TLS with a CA
// made here: a version uploaded to the registry is served by Inference,
// which loads it over mTLS, through the gateway's HTTPS /predict. Then the
// registry's certificate is replaced on disk, and new connections get the
// new one without a restart. A client whose certificate another CA signed
// is refused.
func TestSplitDeploymentOverMutualTLS(t *testing.T) {
	onnxtest.Runtime(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	adminToken := strings.Repeat("a", 40)
	base := defaults(t)
	shared(t, &base)
	base.Gate.ServiceToken = strings.Repeat("s", 40)
	base.Auth.BootstrapToken = adminToken
	base.Clients.TLS.CAFile = caFile
	tlsFor := func(cfg *app.Config, name string, serial int64) (string, string) {
		cert, key := ca.Issue(t, dir, name, serial)
		cfg.Server.GRPCTLS.CertFile, cfg.Server.GRPCTLS.KeyFile, cfg.Server.GRPCTLS.ClientCAFile = cert, key, caFile
		cfg.Server.HTTPTLS.CertFile, cfg.Server.HTTPTLS.KeyFile = cert, key
		cfg.Clients.TLS.CertFile, cfg.Clients.TLS.KeyFile = cert, key
		return cert, key
	}

	backend := base
	backend.Target = "auth,registry,dataset,trainer"
	tlsFor(&backend, "backend", 10)
	be := startTLS(t, backend)

	inf := base
	inf.Target = "inference"
	inf.Inference.DefaultModel = "fish"
	tlsFor(&inf, "inference", 20)
	*inf.Clients.Addresses[app.Auth] = be.grpcAddr
	*inf.Clients.Addresses[app.Registry] = be.grpcAddr
	infr := startTLS(t, inf)

	gw := base
	gw.Target = "gateway"
	tlsFor(&gw, "gateway", 30)
	for _, s := range []string{app.Auth, app.Dataset, app.Trainer, app.Registry} {
		*gw.Clients.Addresses[s] = be.grpcAddr
	}
	*gw.Clients.Addresses[app.Inference] = infr.grpcAddr
	gwr := startTLS(t, gw)

	// A client of the CA, with a certificate of its own (mutual TLS).
	clientCert, clientKey := ca.Issue(t, dir, "client", 40)
	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	clientTLS := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}
	conn, err := grpc.NewClient(be.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+adminToken)
	reg := registrypb.NewRegistryServiceClient(conn)
	stream, err := reg.CreateVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: "fish", Labels: []string{"a", "b", "c"},
		InputSpec: &registrypb.InputSpec{Channels: 3, Height: 8, Width: 8, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}},
	}}})
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: 3}.Bytes()}})
	created, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CreateVersion over mTLS = %v", err)
	}
	if _, err := reg.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: created.GetVersion().GetVersion()}); err != nil {
		t.Fatal(err)
	}

	// /predict through the gateway's HTTPS, to Inference over mTLS; the
	// promotion reaches Inference through its watch of the aliases, so the
	// first answers may still say no version is served.
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	var answer map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := postImage(t, httpsClient, gwr.httpURL+"/predict", imagingtest.PNG(8, 8, 1))
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &answer); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /predict through the gateway = %d %s after 30s", code, body)
		}
		time.Sleep(100 * time.Millisecond) // the alias watch has no event a client can wait on
	}
	if answer["model"] != "fish" || answer["version"] != float64(1) {
		t.Errorf("POST /predict = %v; want fish v1", answer)
	}

	// Rotation: a new certificate for the backend's listener, on disk only.
	before := servedSerial(t, be.grpcAddr, clientTLS)
	tlsFor(&backend, "backend", 11)
	if after := servedSerial(t, be.grpcAddr, clientTLS); before != 10 || after != 11 {
		t.Errorf("served certificate serial before/after rotation = %d/%d; want 10/11 without a restart", before, after)
	}
	// The processes' own connections keep working across the rotation.
	hc := healthpb.NewHealthClient(conn)
	if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health over the existing connection after rotation = %v", err)
	}

	// A client certificate from another CA is refused by the handshake.
	other := tlstest.NewCA(t)
	oc, ok := other.Issue(t, t.TempDir(), "intruder", 50)
	opair, _ := tls.LoadX509KeyPair(oc, ok)
	bad, err := grpc.NewClient(be.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{opair}})))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	cctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(bad).Check(cctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Errorf("Health.Check with a certificate of another CA = nil error; want the handshake refused")
	}
}

type tlsRunning struct {
	grpcAddr, httpURL string
}

// startTLS runs an App whose listeners speak TLS (start's client speaks
// plaintext, so this waits on /readyz over HTTPS instead).
func startTLS(t *testing.T, cfg app.Config) tlsRunning {
	t.Helper()
	p := apptest.Run(t, cfg, nil)
	r := tlsRunning{grpcAddr: p.GRPCAddr, httpURL: "https://" + p.HTTPAddr}
	caPEM, _ := os.ReadFile(cfg.Clients.TLS.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(cfg.Clients.TLS.CertFile, cfg.Clients.TLS.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p.WaitServing(t, conn)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get(r.httpURL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/healthz over TLS = %v, %v", r.httpURL, resp, err)
	}
	resp.Body.Close()
	return r
}

// servedSerial returns the serial of the certificate a new connection to
// addr is served.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) int64 {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg.Clone())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("peer auth info %T; want TLS", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber.Int64()
}

func postImage(t *testing.T, c *http.Client, url string, img []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "x.png")
	fw.Write(img)
	mw.Close()
	resp, err := c.Post(url, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
