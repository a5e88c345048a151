package onnxrt

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrExternalData means a model's tensors name files outside the model:
// ONNX's external data, which ONNX Runtime would open by the path the file
// gives. A model a user uploads must carry all its weights; no path from a
// user's file is ever opened.
var ErrExternalData = errors.New("the model keeps tensors in external files")

// Field numbers of onnx.proto that lead to tensors.
const (
	modelGraph     = 7  // ModelProto.graph
	modelFunctions = 25 // ModelProto.functions (FunctionProto)

	graphNode          = 1  // GraphProto.node
	graphInitializer   = 5  // GraphProto.initializer
	graphSparseInit    = 15 // GraphProto.sparse_initializer
	functionNode       = 7  // FunctionProto.node
	nodeAttribute      = 5  // NodeProto.attribute
	attrTensor         = 5  // AttributeProto.t
	attrGraph          = 6  // AttributeProto.g
	attrTensors        = 10 // AttributeProto.tensors
	attrGraphs         = 11 // AttributeProto.graphs
	attrSparseTensor   = 22 // AttributeProto.sparse_tensor
	attrSparseTensors  = 23 // AttributeProto.sparse_tensors
	sparseValues       = 1  // SparseTensorProto.values
	sparseIndices      = 2  // SparseTensorProto.indices
	tensorExternalData = 13 // TensorProto.external_data
	tensorDataLocation = 14 // TensorProto.data_location (1 = EXTERNAL)
	tensorName         = 8  // TensorProto.name
)

// maxNesting bounds subgraph depth (If/Loop bodies), so a hostile file
// cannot exhaust the stack.
const maxNesting = 64

// CheckExternalData refuses a model any of whose tensors — initializers,
// attribute tensors, sparse tensors, in the graph, its subgraphs or its
// functions — is stored outside the file. It reads the protobuf encoding
// in place, copying nothing.
func CheckExternalData(onnx []byte) error {
	return walk(onnx, 0, func(num protowire.Number, v []byte, depth int) error {
		switch num {
		case modelGraph:
			return checkGraph(v, depth)
		case modelFunctions:
			return walkNodes(v, functionNode, depth)
		}
		return nil
	})
}

// CheckExternalDataFile is CheckExternalData for a model in a file, mapped
// into memory rather than read into the heap (models may be a gigabyte).
func CheckExternalDataFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%w: empty file", ErrInvalidModel)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("map %s: %w", path, err)
	}
	defer syscall.Munmap(b) //nolint:errcheck // unmapping a read-only private map cannot lose data
	return CheckExternalData(b)
}

func checkGraph(g []byte, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("%w: subgraphs nested more than %d deep", ErrInvalidModel, maxNesting)
	}
	return walk(g, depth, func(num protowire.Number, v []byte, depth int) error {
		switch num {
		case graphInitializer:
			return checkTensor(v)
		case graphSparseInit:
			return checkSparse(v)
		case graphNode:
			return checkNode(v, depth)
		}
		return nil
	})
}

// walkNodes checks the nodes (field nodeField) of a FunctionProto.
func walkNodes(fn []byte, nodeField protowire.Number, depth int) error {
	return walk(fn, depth, func(num protowire.Number, v []byte, depth int) error {
		if num == nodeField {
			return checkNode(v, depth)
		}
		return nil
	})
}

func checkNode(n []byte, depth int) error {
	return walk(n, depth, func(num protowire.Number, v []byte, depth int) error {
		if num != nodeAttribute {
			return nil
		}
		return walk(v, depth, func(num protowire.Number, v []byte, depth int) error {
			switch num {
			case attrTensor, attrTensors:
				return checkTensor(v)
			case attrSparseTensor, attrSparseTensors:
				return checkSparse(v)
			case attrGraph, attrGraphs:
				return checkGraph(v, depth+1)
			}
			return nil
		})
	})
}

func checkSparse(s []byte) error {
	return walk(s, 0, func(num protowire.Number, v []byte, _ int) error {
		if num == sparseValues || num == sparseIndices {
			return checkTensor(v)
		}
		return nil
	})
}

func checkTensor(t []byte) error {
	var name string
	external := false
	err := walkAll(t, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == tensorName && typ == protowire.BytesType:
			name = string(v)
		case num == tensorExternalData && typ == protowire.BytesType:
			external = true
		case num == tensorDataLocation && typ == protowire.VarintType && x == 1:
			external = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if external {
		if len(name) > 80 {
			name = name[:80] + "..."
		}
		return fmt.Errorf("%w (tensor %q): upload a model with its weights inside (torch.onnx.export writes them in the file below 2 GiB; onnx.save_model(m, path, save_as_external_data=False) merges them)", ErrExternalData, name)
	}
	return nil
}

// walk calls fn for each length-delimited field of the message b.
func walk(b []byte, depth int, fn func(num protowire.Number, v []byte, depth int) error) error {
	return walkAll(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		return fn(num, v, depth)
	})
}

// walkAll calls fn for each field of the message b: the bytes of a
// length-delimited field, or the value of a varint.
func walkAll(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: not an ONNX model (bad protobuf: %v)", ErrInvalidModel, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: not an ONNX model (bad protobuf: %v)", ErrInvalidModel, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
