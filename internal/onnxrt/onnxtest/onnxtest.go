// Package onnxtest gives tests real ONNX Runtime and real ONNX models
// without Python: it loads the runtime the way the services do (skipping, or
// failing when SHOAL_TEST_ORT_REQUIRED=1, if the library is absent) and
// writes small classifier graphs as ONNX ModelProto bytes with protowire.
package onnxtest

import (
	"encoding/binary"
	"math"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// EnvRequired makes a missing ONNX Runtime library a test failure (CI sets
// it) instead of a skip.
const EnvRequired = "SHOAL_TEST_ORT_REQUIRED"

// Runtime loads ONNX Runtime from the default locations (ONNXRUNTIME_SHARED_
// LIBRARY_PATH, then the setup script's cache).
func Runtime(t testing.TB) *onnxrt.Runtime {
	t.Helper()
	rt, err := onnxrt.Load(onnxrt.Config{})
	if err != nil {
		msg := err.Error() + `: run export ONNXRUNTIME_SHARED_LIBRARY_PATH="$(scripts/setup-onnxruntime.sh)"`
		if os.Getenv(EnvRequired) == "1" {
			t.Fatal(msg + " (" + EnvRequired + "=1 makes this an error)")
		}
		t.Skip(msg)
	}
	return rt
}

// Classifier describes a tiny image classifier: input float32 [N,C,H,W] (or
// [N,H,W,C]) -> Flatten -> Gemm with constant weights -> optional Softmax ->
// output [N,Classes].
type Classifier struct {
	Input, Output   string // tensor names; default "input" and "output"
	Channels        int64
	Height, Width   int64
	Classes         int64
	NHWC            bool  // input layout [N,H,W,C] instead of [N,C,H,W]
	Batch           int64 // fixed batch size; 0 makes the batch dimension dynamic ("N")
	Softmax         bool  // apply softmax in the graph
	Opset           int64 // default 13
	WeightsFromSeed byte  // varies the weights, and so the file's bytes
}

// Bytes serialises c as an ONNX ModelProto. Weight w[i][k] is small and
// deterministic, and the bias of class k is k, so an all-zero image scores
// the last class highest.
func (c Classifier) Bytes() []byte {
	if c.Input == "" {
		c.Input = "input"
	}
	if c.Output == "" {
		c.Output = "output"
	}
	if c.Opset == 0 {
		c.Opset = 13
	}
	features := c.Channels * c.Height * c.Width
	w := make([]float32, features*c.Classes)
	for i := range w {
		w[i] = float32((i+int(c.WeightsFromSeed))%7-3) / 100
	}
	b := make([]float32, c.Classes)
	for k := range b {
		b[k] = float32(k)
	}

	batch := dim{value: c.Batch}
	if c.Batch == 0 {
		batch = dim{param: "N"}
	}
	inShape := []dim{batch, {value: c.Channels}, {value: c.Height}, {value: c.Width}}
	if c.NHWC {
		inShape = []dim{batch, {value: c.Height}, {value: c.Width}, {value: c.Channels}}
	}
	logits := c.Output
	nodes := [][]byte{
		node("flatten", "Flatten", []string{c.Input}, []string{"flat"}, attrInt("axis", 1)),
	}
	if c.Softmax {
		logits = "logits"
	}
	nodes = append(nodes, node("fc", "Gemm", []string{"flat", "W", "B"}, []string{logits}, attrInt("transB", 0)))
	if c.Softmax {
		nodes = append(nodes, node("softmax", "Softmax", []string{logits}, []string{c.Output}, attrInt("axis", 1)))
	}
	g := Graph{
		Name:         "classifier",
		Nodes:        nodes,
		Initializers: [][]byte{FloatTensor("W", []int64{features, c.Classes}, w), FloatTensor("B", []int64{c.Classes}, b)},
		Inputs:       [][]byte{valueInfo(c.Input, inShape)},
		Outputs:      [][]byte{valueInfo(c.Output, []dim{batch, {value: c.Classes}})},
	}
	return Model(g, c.Opset)
}

// Field numbers of onnx.proto (github.com/onnx/onnx/blob/main/onnx/onnx.proto).
const (
	modelIRVersion   = 1
	modelGraph       = 7
	modelOpsetImport = 8

	opsetDomain  = 1
	opsetVersion = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5

	attrName = 1
	attrI    = 3
	attrType = 20
	attrINT  = 2 // AttributeProto.AttributeType.INT

	valueInfoName = 1
	valueInfoType = 2

	typeTensorType  = 1
	tensorElemType  = 1
	tensorTypeShape = 2
	shapeDim        = 1
	dimValue        = 1
	dimParam        = 2

	tensorDims     = 1
	tensorDataType = 2
	tensorName     = 8
	tensorRawData  = 9

	elemFloat = 1 // TensorProto.DataType.FLOAT

	irVersion = 8 // opsets up to 17
)

// Graph is a GraphProto's parts, each already serialised.
type Graph struct {
	Name                string
	Nodes, Initializers [][]byte
	Inputs, Outputs     [][]byte
}

// Model serialises a ModelProto holding g with the default-domain opset.
func Model(g Graph, opset int64) []byte {
	var graph []byte
	for _, n := range g.Nodes {
		graph = appendBytes(graph, graphNode, n)
	}
	graph = appendString(graph, graphName, g.Name)
	for _, t := range g.Initializers {
		graph = appendBytes(graph, graphInitializer, t)
	}
	for _, v := range g.Inputs {
		graph = appendBytes(graph, graphInput, v)
	}
	for _, v := range g.Outputs {
		graph = appendBytes(graph, graphOutput, v)
	}
	var op []byte
	op = appendString(op, opsetDomain, "")
	op = appendVarint(op, opsetVersion, uint64(opset))

	var m []byte
	m = appendVarint(m, modelIRVersion, irVersion)
	m = appendBytes(m, modelGraph, graph)
	m = appendBytes(m, modelOpsetImport, op)
	return m
}

// FloatTensor serialises a float32 TensorProto with its data as raw
// little-endian bytes.
func FloatTensor(name string, dims []int64, data []float32) []byte {
	var t []byte
	for _, d := range dims {
		t = appendVarint(t, tensorDims, uint64(d))
	}
	t = appendVarint(t, tensorDataType, elemFloat)
	t = appendString(t, tensorName, name)
	raw := make([]byte, 4*len(data))
	for i, f := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return appendBytes(t, tensorRawData, raw)
}

func node(name, op string, inputs, outputs []string, attrs ...[]byte) []byte {
	var n []byte
	for _, in := range inputs {
		n = appendString(n, nodeInput, in)
	}
	for _, out := range outputs {
		n = appendString(n, nodeOutput, out)
	}
	n = appendString(n, nodeName, name)
	n = appendString(n, nodeOpType, op)
	for _, a := range attrs {
		n = appendBytes(n, nodeAttribute, a)
	}
	return n
}

func attrInt(name string, v int64) []byte {
	var a []byte
	a = appendString(a, attrName, name)
	a = appendVarint(a, attrI, uint64(v))
	return appendVarint(a, attrType, attrINT)
}

// dim is a TensorShapeProto.Dimension: a value, or a symbolic name.
type dim struct {
	value int64
	param string
}

func valueInfo(name string, shape []dim) []byte {
	var s []byte
	for _, d := range shape {
		var e []byte
		if d.param != "" {
			e = appendString(e, dimParam, d.param)
		} else {
			e = appendVarint(e, dimValue, uint64(d.value))
		}
		s = appendBytes(s, shapeDim, e)
	}
	var tt []byte
	tt = appendVarint(tt, tensorElemType, elemFloat)
	tt = appendBytes(tt, tensorTypeShape, s)
	var ty []byte
	ty = appendBytes(ty, typeTensorType, tt)
	var v []byte
	v = appendString(v, valueInfoName, name)
	return appendBytes(v, valueInfoType, ty)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}
