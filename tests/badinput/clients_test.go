package badinput

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/badinput"
	"github.com/shoalml/shoal/internal/overload"
)

// Clients that misbehave in time rather than in bytes: they trickle, they
// crowd in with the largest messages allowed, they go away midway.

// slowTimeout is the header and body bound the slow-client test runs with.
const slowTimeout = 500 * time.Millisecond

// TestSlowClients trickles headers and bodies: the server cuts them off
// after its bounds with the status that says so, meanwhile serves everyone
// else, frees the inference slots they held, and stores nothing of them.
func TestSlowClients(t *testing.T) {
	const slots = 2
	s := startServer(t, func(c *app.Config) {
		c.Server.ReadHeaderTimeout, c.Server.ReadBodyTimeout, c.Server.IdleTimeout = slowTimeout, slowTimeout, slowTimeout
		c.GatewayMaxPredicts = slots
	})
	createDataset(t, s, "slow")
	before, err := s.inventory(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	img := badinput.GoodPNG(1)

	// Headers, a byte at a time: the connection is closed once the bound
	// passes (net/http answers nothing to a request it never read). The
	// server's clock starts once it has accepted the connection, which
	// may be before Dial returns here: the time is taken before dialing.
	began := time.Now()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.http, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(began)
	}()
	go trickle(conn, []byte("POST /predict HTTP/1.1\r\nHost: shoal\r\nX-Slow: "+strings.Repeat("x", 400)), 20*time.Millisecond)

	// A kept-alive connection that sends no next request is closed once
	// the idle bound passes.
	idle, err := net.Dial("tcp", strings.TrimPrefix(s.http, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idleClosed := make(chan time.Duration, 1)
	go func() {
		_, _ = fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: shoal\r\n\r\n")
		answered := time.Now()
		_, _ = io.Copy(io.Discard, idle) // the answer, then nothing until closed
		idleClosed <- time.Since(answered)
	}()

	// Bodies, a byte at a time, on the inference route: each holds one of
	// the gateway's slots while it trickles.
	body, contentType := predictBody(t, img)
	type answer struct {
		code int
		msg  string
	}
	slow := make(chan answer, slots)
	for range slots {
		go func() {
			pr, pw := io.Pipe()
			go func() { trickle(pw, body, 20*time.Millisecond); pw.Close() }()
			defer pw.Close()
			req, _ := http.NewRequest(http.MethodPost, s.http+"/predict?model=fish&version=1", pr)
			req.Header.Set("Content-Type", contentType)
			req.ContentLength = int64(len(body))
			resp, err := http.DefaultClient.Do(s.authed(req))
			if err != nil {
				slow <- answer{0, err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			slow <- answer{resp.StatusCode, string(b)}
		}()
	}
	// Meanwhile the process answers others: its probes at once, and
	// predictions once a trickler's slot is freed.
	if err := s.alive(t.Context()); err != nil {
		t.Errorf("while clients trickle: %v", err)
	}
	for range slots {
		a := <-slow
		if a.code != http.StatusRequestTimeout || !strings.Contains(a.msg, "arrived too slowly") {
			t.Errorf("POST /predict with a trickled body = %d %q; want 408 saying it arrived too slowly", a.code, a.msg)
		}
	}
	// The server closes connections idle for slowTimeout here; a pooled
	// one reused as it does so fails a POST with EOF (the client cannot
	// tell whether it was read, so it does not retry). The requests below
	// go on new connections.
	noIdle := http.DefaultClient.CloseIdleConnections
	noIdle()
	if r := predictForm200(t, s, img); r != http.StatusOK {
		t.Errorf("POST /predict after the tricklers were cut off = %d; want 200: their slots are free", r)
	}
	select {
	case d := <-closed:
		if d < slowTimeout {
			t.Errorf("the header trickler was cut off after %v; want the bound of %v first", d, slowTimeout)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("a connection trickling its headers is still open after 30s; want it closed after %v", slowTimeout)
	}

	select {
	case d := <-idleClosed:
		if d < slowTimeout/2 {
			t.Errorf("an idle kept-alive connection was closed after %v; want the idle bound of %v first", d, slowTimeout)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("an idle kept-alive connection is still open after 30s; want it closed after %v", slowTimeout)
	}

	// An upload stream may take as long as it keeps sending; one that
	// stops is cut off, and the part of it that was read is not stored.
	line := fmt.Sprintf(`{"file":{"split":"train","label":"Cat","fileName":"a.png","content":"%s"}}`+"\n", base64.StdEncoding.EncodeToString(img))
	stalled := append([]byte(`{"header":{"dataset":"slow"}}`+"\n"), line[:len(line)/2]...)
	noIdle()
	code, msg := postStream(t, s, "/v1/images:upload", stalled, true)
	if code != http.StatusRequestTimeout || !strings.Contains(msg, "no byte of it for") {
		t.Errorf("an upload stream that stops midway = %d %q; want 408 saying it stopped", code, msg)
	}
	after, err := s.inventory(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for tbl, n := range after.rows {
		if n != before.rows[tbl] {
			t.Errorf("table %s: %d rows after the slow clients; want %d", tbl, n, before.rows[tbl])
		}
	}
	stream := []byte(`{"header":{"dataset":"slow"}}` + "\n" + line)
	noIdle()
	if code, msg := postStream(t, s, "/v1/images:upload", stream, false); code != http.StatusOK || !strings.Contains(msg, `"added":1`) {
		t.Errorf("an upload stream trickled for longer than the bound, each piece within it = %d %q; want 200, 1 added", code, msg)
	}
}

// trickle writes b to w in pieces of a few bytes, one every period, until
// it is written or w fails.
func trickle(w io.Writer, b []byte, every time.Duration) {
	for len(b) > 0 {
		n := min(len(b), 4)
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
		time.Sleep(every)
	}
}

// postStream posts body in pieces arriving within the body bound (it takes
// longer than the bound in all), then ends it, or with stall leaves it
// open without another byte.
func postStream(t *testing.T, s *server, path string, body []byte, stall bool) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	piece := max(1, len(body)/8)
	go func() {
		for len(body) > 0 {
			n := min(len(body), piece)
			if _, err := pw.Write(body[:n]); err != nil {
				return
			}
			body = body[n:]
			time.Sleep(slowTimeout / 4)
		}
		if !stall {
			pw.Close()
		}
	}()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.http+path, pr)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(s.authed(req))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func predictBody(t *testing.T, img []byte) ([]byte, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "a.png")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(img)
	mw.Close()
	return body.Bytes(), mw.FormDataContentType()
}

func predictForm200(t *testing.T, s *server, img []byte) int {
	t.Helper()
	body, ct := predictBody(t, img)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.http+"/predict?model=fish&version=1", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(s.authed(req))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func createDataset(t *testing.T, s *server, name string) {
	t.Helper()
	if _, err := s.dataset.CreateDataset(t.Context(), &datasetpb.CreateDatasetRequest{Name: name}); err != nil {
		t.Fatalf("CreateDataset(%s) = %v", name, err)
	}
}

// heapPeak samples the live heap every millisecond until stop is called,
// and returns its peak.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); <-stopped; return peak.Load() }
}

// liveHeap is the live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// rawCodec sends pre-encoded messages as they are, so that many clients
// share one buffer and the test's own memory stays out of the server's.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (rawCodec) Name() string                       { return "proto" }

var _ encoding.Codec = rawCodec{}

// TestManyMaximumSizeMessages sends many messages of the largest size
// allowed at once, over REST and gRPC: every one is answered (classified,
// or refused as an overload with when to retry, never a server error), and
// the server's heap grows by no more than what its limits allow: the
// in-flight bound on inference calls times the copies a message makes.
func TestManyMaximumSizeMessages(t *testing.T) {
	const (
		clients = 24 // at once, on each protocol
		// The calls read at once: REST's --gateway.max-predicts, and gRPC's
		// queue + sessions × batch (server.WithCallBound).
		restSlots, queue = 4, 4
		grpcSlots        = queue + 1*1
		// How many times a message's bytes are held at once while a call
		// runs: over REST the multipart form's buffer and the file read
		// from it (each grown by doubling, so up to twice the bytes), the
		// gateway's gRPC message, the server's received message and its
		// unmarshalled form; over gRPC the last two, and the transport's
		// buffers.
		restCopies, grpcCopies = 7, 3
	)
	s := startServer(t, func(c *app.Config) {
		c.GatewayMaxPredicts = restSlots
		c.Inference.QueueSize = queue
		c.Inference.Sessions, c.Inference.MaxBatchSize = 1, 1
		c.Inference.MaxImageBytes = badinput.MaxMessageBytes
	})
	// The largest image a message carries: a valid PNG made large by a
	// text chunk, so decoding it costs little and the bytes are the load.
	img := badinput.LargePNG(badinput.MaxMessageBytes - 64<<10)
	body, contentType := predictBody(t, img)
	msg, err := proto.Marshal(&inferencepb.PredictRequest{Model: "fish", Version: 1, Images: [][]byte{img}})
	if err != nil {
		t.Fatal(err)
	}
	raw := s.dial(t, grpc.ForceCodec(rawCodec{}), grpc.MaxCallSendMsgSize(64<<20))
	// Collect often, so the heap's peak is what is held rather than how far
	// the collector lagged (which a loaded machine stretches).
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	for _, proto := range []string{"REST", "gRPC"} {
		t.Run(proto, func(t *testing.T) {
			slots, copies := restSlots, restCopies
			if proto == "gRPC" {
				slots, copies = grpcSlots, grpcCopies
			}
			limit := uint64(slots*copies*badinput.MaxMessageBytes) + 32<<20 // and room for the collector's lag
			base := liveHeap()
			stop := heapPeak()
			var wg sync.WaitGroup
			var ok, shed atomic.Int64
			for range clients {
				wg.Go(func() {
					var code codes.Code
					var retry bool
					var text string
					if proto == "REST" {
						req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.http+"/predict?model=fish&version=1", bytes.NewReader(body))
						req.Header.Set("Content-Type", contentType)
						resp, err := http.DefaultClient.Do(s.authed(req))
						if err != nil {
							t.Errorf("POST /predict: %v", err)
							return
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						code, retry, text = codeOfHTTP(resp.StatusCode), resp.Header.Get("Retry-After") != "", string(b)
						if resp.StatusCode == http.StatusOK {
							code = codes.OK
						}
					} else {
						var resp inferencepb.PredictResponse
						err := raw.Invoke(t.Context(), "/shoal.inference.v1.InferenceService/Predict", &msg, &resp)
						_, retry = overload.RetryAfter(err)
						code, text = status.Code(err), status.Convert(err).Message()
					}
					switch {
					case code == codes.OK:
						ok.Add(1)
					case code == codes.ResourceExhausted && retry:
						shed.Add(1)
					default:
						t.Errorf("%s: %s %q; want success, or an overload to retry", proto, code, text)
					}
				})
			}
			wg.Wait()
			peak := stop()
			grew := int64(peak) - int64(base)
			t.Logf("%d messages of %d bytes at once: %d classified, %d refused to retry; heap %d MiB at rest, %d MiB at peak (+%d MiB; bound +%d MiB)",
				clients, len(img), ok.Load(), shed.Load(), base>>20, peak>>20, grew>>20, limit>>20)
			if ok.Load() == 0 {
				t.Errorf("no message was classified")
			}
			if grew > int64(limit) {
				t.Errorf("the heap grew by %d MiB under %d messages of %d MiB at once; want at most %d MiB (%d in flight × %d copies + 32)",
					grew>>20, clients, len(img)>>20, limit>>20, slots, copies)
			}
		})
	}
	if err := s.alive(t.Context()); err != nil {
		t.Fatal(err)
	}
}
