package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/server"
)

// streamMessageLimit is the fuzzed server's grpc.max-message-bytes: small,
// so that short inputs cross the stream's bound of twice it.
const streamMessageLimit = 64

// FuzzClientStreamBody sends the body of a REST client stream through the
// HTTP handler to the decoder grpc-gateway runs on it (one JSON value per
// message, then protojson), and checks that no value the decoder holds
// whole, blank space included, is over twice the message limit: however
// the body is split into lines, blank lines or nested values.
func FuzzClientStreamBody(f *testing.F) {
	cfg := defaultConfig()
	cfg.MaxMessageBytes = streamMessageLimit
	bound := int64(2 * streamMessageLimit)
	f.Fuzz(func(t *testing.T, body []byte) {
		defer fuzztest.Watchdog(5 * time.Second)()
		var problem string
		api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			in := &countingReader{r: r.Body}
			dec := (&runtime.JSONPb{}).NewDecoder(in)
			offset := func() int64 { return dec.(runtime.DecoderWrapper).InputOffset() }
			for prev := int64(0); ; prev = offset() {
				var msg datasetpb.UploadImagesRequest
				err := dec.Decode(&msg)
				// The decoder's buffer grows only while the value it reads,
				// with the blank space before it, does not fit: bounding
				// that bounds the buffer. (It also reads ahead, but only
				// into room the buffer already has.)
				if span := offset() - prev; span > bound {
					problem = fmt.Sprintf("the decoder held a message of %d bytes; want at most %d", span, bound)
					return
				}
				if errors.Is(err, io.EOF) {
					if tail := in.n - offset(); tail > bound {
						problem = fmt.Sprintf("the decoder held %d bytes after the last message; want at most %d", tail, bound)
					}
					return
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
		})
		h := server.NewHTTPHandler(cfg, server.HTTPOptions{API: api, Gatherer: prometheus.NewRegistry(), ClientStreams: []string{"POST /v1/images:upload"}})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/images:upload", bytes.NewReader(body)))
		if problem != "" {
			t.Fatal(problem)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestWriteFuzzSeeds rebuilds the seed corpus of FuzzClientStreamBody (see
// package fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	file := `{"file":{"split":"SPLIT_TRAIN","label":"Fish","fileName":"a.png","content":"iVBORw0KGgo="}}`
	header := `{"header":{"dataset":"fish"}}`
	fuzztest.WriteSeeds(t, "FuzzClientStreamBody", []fuzztest.Seed{
		{Name: "ndjson", Args: []any{[]byte(header + "\n" + file + "\n")}},
		{Name: "one-line", Args: []any{[]byte(header + file)}},
		{Name: "crlf", Args: []any{[]byte(header + "\r\n" + file + "\r\n")}},
		{Name: "pretty-printed", Args: []any{[]byte("{\n  \"header\": {\n    \"dataset\": \"fish\"\n  }\n}\n")}},
		{Name: "escaped-quotes", Args: []any{[]byte(`{"header":{"dataset":"a\"}\"\\"}}` + "\n")}},
		{Name: "blank-lines", Args: []any{[]byte(header + "\n\n\n\n\n\n" + file)}},
		{Name: "not-json", Args: []any{[]byte("xxxx\nyyyy\n")}},
		{Name: "scalars", Args: []any{[]byte("1 2 \"three\" [4]\n")}},
		// Past the bound, each of its lines short: one message over many
		// lines, and blank lines, which the decoder keeps while it waits.
		{Name: "long-multi-line-message", Args: []any{[]byte("{\"header\":{\"dataset\":\"fish\"}, \"file\": {\n" + strings.Repeat("  \"label\": \"Fish\",\n", 10) + "\"split\":1}}\n")}},
		{Name: "many-blank-lines", Args: []any{[]byte(header + strings.Repeat("\n", 300) + file)}},
	})
}
