package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shoalml/shoal/internal/jsontree"
)

// Shoal's REST JSON has one voice: protobuf's JSON mapping with camelCase
// names and zero values written out, except that 64-bit integers are JSON
// numbers whenever a JavaScript number holds them exactly (protobuf writes
// them as strings); durations stay protobuf's "1.5s". On input both forms of
// a 64-bit integer are taken, and an enum also by its short lower-case name
// ("train" for SPLIT_TRAIN), in bodies and in query parameters.

// maxExact is the largest integer a float64 (a JavaScript number) holds
// exactly.
const maxExact = 1<<53 - 1

// MarshalJSON writes m in the REST API's voice.
func MarshalJSON(m proto.Message) ([]byte, error) {
	b, err := JSONOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	return revoice(b, m.ProtoReflect().Descriptor(), numbers)
}

// voice is the gateway's marshaler.
type voice struct {
	runtime.JSONPb
}

func newVoice() *voice {
	return &voice{JSONPb: runtime.JSONPb{
		MarshalOptions:   JSONOptions,
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

func (v *voice) Marshal(x any) ([]byte, error) {
	b, err := v.JSONPb.Marshal(x)
	if err != nil {
		return nil, err
	}
	switch m := x.(type) {
	case proto.Message:
		return revoice(b, m.ProtoReflect().Descriptor(), numbers)
	case map[string]any: // a server stream's {"result": ...} line
		tree, err := jsontree.Parse(b)
		if err != nil || tree.Kind != jsontree.Object {
			return b, nil
		}
		for k, v := range m {
			if msg, ok := v.(proto.Message); ok && msg != nil {
				if x, ok := tree.Fields[k]; ok {
					walkMessage(msg.ProtoReflect().Descriptor(), x, numbers)
				}
			}
		}
		return tree.MarshalJSON()
	}
	return b, nil
}

// errNotUTF8 refuses a body that is not UTF-8. JSON must be (RFC 8259),
// and protobuf strings must be; without this check the revoicing below
// would pass the bytes through encoding/json, which turns each invalid one
// into U+FFFD, and a file name or label would be stored altered without a
// word.
var errNotUTF8 = errors.New("the JSON is not valid UTF-8: a string holds bytes of another encoding (Latin-1, say); send text as UTF-8")

func (v *voice) Unmarshal(data []byte, x any) error {
	if !utf8.Valid(data) {
		return errNotUTF8
	}
	if m, ok := x.(proto.Message); ok {
		var err error
		if data, err = revoice(data, m.ProtoReflect().Descriptor(), shortEnums); err != nil {
			return err
		}
	}
	return v.JSONPb.Unmarshal(data, x)
}

func (v *voice) NewDecoder(r io.Reader) runtime.Decoder {
	d := json.NewDecoder(r)
	return runtime.DecoderFunc(func(x any) error {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return err
		}
		return v.Unmarshal(raw, x)
	})
}

func (v *voice) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(x any) error {
		b, err := v.Marshal(x)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
}

// revoice rewrites the JSON of a message of descriptor md with fix, which
// sees every value of a scalar field; keys keep their order.
func revoice(b []byte, md protoreflect.MessageDescriptor, fix func(fd protoreflect.FieldDescriptor, v *jsontree.Value)) ([]byte, error) {
	tree, err := jsontree.Parse(b)
	if err != nil {
		return b, nil // not JSON: let protojson say what is wrong
	}
	walkMessage(md, tree, fix)
	return tree.MarshalJSON()
}

// wellKnownJSON are message types whose JSON is not an object of their
// fields; they are left as they are.
func wellKnownJSON(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask", "google.protobuf.Any",
		"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return true
	}
	return false
}

func walkMessage(md protoreflect.MessageDescriptor, v *jsontree.Value, fix func(protoreflect.FieldDescriptor, *jsontree.Value)) {
	if v.Kind != jsontree.Object || wellKnownJSON(md) {
		return
	}
	fields := md.Fields()
	for _, name := range v.Keys {
		fd := fields.ByJSONName(name)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(name))
		}
		if fd != nil {
			walkField(fd, v.Fields[name], fix)
		}
	}
}

func walkField(fd protoreflect.FieldDescriptor, v *jsontree.Value, fix func(protoreflect.FieldDescriptor, *jsontree.Value)) {
	switch {
	case fd.IsMap() && v.Kind == jsontree.Object:
		for _, k := range v.Keys {
			walkValue(fd.MapValue(), v.Fields[k], fix)
		}
	case fd.IsList() && v.Kind == jsontree.Array:
		for _, x := range v.Items {
			walkValue(fd, x, fix)
		}
	case !fd.IsMap() && !fd.IsList():
		walkValue(fd, v, fix)
	}
}

func walkValue(fd protoreflect.FieldDescriptor, v *jsontree.Value, fix func(protoreflect.FieldDescriptor, *jsontree.Value)) {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		walkMessage(fd.Message(), v, fix)
		return
	}
	if v.Kind == jsontree.Scalar {
		fix(fd, v)
	}
}

// numbers turns a 64-bit integer written as a string into a number when a
// float64 holds it exactly.
func numbers(fd protoreflect.FieldDescriptor, v *jsontree.Value) {
	s, ok := v.Scalar.(string)
	if !ok {
		return
	}
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= -maxExact && n <= maxExact {
			v.Scalar = json.Number(s)
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if n, err := strconv.ParseUint(s, 10, 64); err == nil && n <= maxExact {
			v.Scalar = json.Number(s)
		}
	}
}

// shortEnums turns an enum's short name ("train") into its value's name
// ("SPLIT_TRAIN").
func shortEnums(fd protoreflect.FieldDescriptor, v *jsontree.Value) {
	if s, ok := v.Scalar.(string); ok && fd.Kind() == protoreflect.EnumKind {
		if full, ok := enumByShortName(fd.Enum(), s); ok {
			v.Scalar = full
		}
	}
}

// enumByShortName finds the value of ed whose name is s, or whose name
// without the enum's prefix is s in any case ("train", "Train" for
// SPLIT_TRAIN of enum Split).
func enumByShortName(ed protoreflect.EnumDescriptor, s string) (string, bool) {
	values := ed.Values()
	if values.ByName(protoreflect.Name(s)) != nil {
		return "", false // already a full name
	}
	prefix := enumPrefix(ed)
	want := strings.ToUpper(prefix + s)
	for i := range values.Len() {
		name := string(values.Get(i).Name())
		if strings.EqualFold(name, want) {
			return name, true
		}
	}
	return "", false
}

// enumPrefix is the upper snake case of the enum's name plus "_": SPLIT_ for
// Split, JOB_STATE_ for JobState, as Buf's lint requires of value names.
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i, r := range string(ed.Name()) {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String()) + "_"
}

// voiceQueryParser takes enum query parameters by their short names too,
// then parses as grpc-gateway does.
type voiceQueryParser struct{ runtime.DefaultQueryParser }

func (p voiceQueryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	md := msg.ProtoReflect().Descriptor()
	for key, vals := range values {
		fd := fieldByPath(md, key)
		if fd == nil || fd.Kind() != protoreflect.EnumKind {
			continue
		}
		for i, v := range vals {
			if full, ok := enumByShortName(fd.Enum(), v); ok {
				vals[i] = full
			}
		}
	}
	if err := p.DefaultQueryParser.Parse(msg, values, filter); err != nil {
		return fmt.Errorf("%w (enum values may also be given by their short names, e.g. split=train)", err)
	}
	return nil
}

// fieldByPath resolves a query parameter's dotted field path.
func fieldByPath(md protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	parts := strings.Split(path, ".")
	for i, part := range parts {
		fields := md.Fields()
		fd := fields.ByJSONName(part)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(part))
		}
		if fd == nil {
			return nil
		}
		if i == len(parts)-1 {
			return fd
		}
		if fd.Message() == nil {
			return nil
		}
		md = fd.Message()
	}
	return nil
}
