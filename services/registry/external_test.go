package registry_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/services/registry"
)

// A model whose tensors live in external files would make ONNX Runtime open
// the paths the file names (here /etc/passwd): it is refused before ONNX
// Runtime sees it, and nothing is stored.
func TestUploadWithExternalDataIsRefused(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	// A valid classifier, plus a second graph field that protobuf merges
	// into the first: one more initializer, stored "in" /etc/passwd.
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 8, protowire.BytesType)
	tensor = protowire.AppendString(tensor, "stolen")
	tensor = protowire.AppendTag(tensor, 14, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, 1)
	var kv []byte
	kv = protowire.AppendTag(kv, 1, protowire.BytesType)
	kv = protowire.AppendString(kv, "location")
	kv = protowire.AppendTag(kv, 2, protowire.BytesType)
	kv = protowire.AppendString(kv, "/etc/passwd")
	tensor = protowire.AppendTag(tensor, 13, protowire.BytesType)
	tensor = protowire.AppendBytes(tensor, kv)
	graph := protowire.AppendTag(nil, 5, protowire.BytesType)
	graph = protowire.AppendBytes(graph, tensor)
	artifact := protowire.AppendTag(classifier(5, 1), 7, protowire.BytesType)
	artifact = protowire.AppendBytes(artifact, graph)

	_, err := upload(t.Context(), e.client, spec("fish", fish...), artifact, 1<<20)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "external files") {
		t.Fatalf("CreateVersion(tensor in /etc/passwd) = %v; want INVALID_ARGUMENT about external files", err)
	}
	var n int64
	if err := e.gdb.Table("registry_versions").Count(&n).Error; err != nil || n != 0 {
		t.Errorf("versions stored = %d, %v; want none", n, err)
	}
}

// ONNX Runtime reads an uploaded model in a child process within
// registry.inspect-timeout and registry.inspect-memory-bytes: a model that
// exceeds them is refused with a reason, nothing is stored, and the
// registry goes on taking uploads.
func TestUploadInspectedInABoundedChild(t *testing.T) {
	if raceBuild {
		t.Skip("a race-built child cannot load ONNX Runtime within 256 MiB; make check (no -race) runs this test")
	}
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{cfg: func(c *registry.Config) { c.InspectMemoryBytes = 256 << 20 }})
	// 3×224×224 inputs to 100 classes: 60 MB of weights, which ONNX
	// Runtime cannot hold twice within 256 MiB.
	big := &registrypb.VersionSpec{Model: "big", Labels: make([]string, 100),
		InputSpec: &registrypb.InputSpec{Channels: 3, Height: 224, Width: 224}}
	for i := range big.Labels {
		big.Labels[i] = fmt.Sprintf("class %d", i)
	}
	artifact := onnxtest.Classifier{Channels: 3, Height: 224, Width: 224, Classes: 100}.Bytes()
	_, err := upload(t.Context(), e.client, big, artifact, 1<<20)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not an ONNX model that ONNX Runtime can load") {
		t.Fatalf("CreateVersion(a model past the child's memory) = %v; want INVALID_ARGUMENT", err)
	}
	var n int64
	if err := e.gdb.Table("registry_versions").Count(&n).Error; err != nil || n != 0 {
		t.Errorf("versions stored = %d, %v; want none", n, err)
	}
	if _, err := upload(t.Context(), e.client, spec("fish", fish...), classifier(5, 1), 1<<20); err != nil {
		t.Errorf("CreateVersion(a small model) after the refusal = %v", err)
	}
}
