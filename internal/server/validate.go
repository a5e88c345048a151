package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
)

// validation checks every message a server receives against the rules its
// contract declares (the buf.validate annotations in proto/), so that a
// request that breaks them is refused INVALID_ARGUMENT, naming each field
// and rule, before a handler sees it. It runs after the gates: a caller who
// may not call gets UNAUTHENTICATED or PERMISSION_DENIED, never a lesson in
// the request's shape. Messages of client streams are checked one by one as
// the handler receives them. Calls a server forwards to their owner (see
// WithForwarded) arrive as undecoded frames, not protobuf messages, and pass
// untouched: the owner checks them.
type validation struct{}

// validator is built once: it caches the compiled rules of each message
// type, and building it has no inputs that could fail.
var validator = sync.OnceValue(func() protovalidate.Validator {
	v, err := protovalidate.New()
	if err != nil {
		panic(fmt.Sprintf("protovalidate.New() = %v", err))
	}
	return v
})

func (validation) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := validate(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (validation) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, validatingStream{ss})
	}
}

// validatingStream checks each message the handler receives.
type validatingStream struct{ grpc.ServerStream }

func (s validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return validate(m)
}

// validate returns nil for a message that keeps its rules (and for what is
// not a protobuf message), else the INVALID_ARGUMENT status described at
// violations.
func validate(m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil
	}
	err := validator().Validate(msg)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// A rule that does not compile or cannot be evaluated is a fault
		// of the contract, not of the request; the interceptors mask it.
		return fmt.Errorf("validating %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	return violations(msg.ProtoReflect().Descriptor(), verr)
}

// violations turns a validation error of a message of type md into the
// status a client gets: INVALID_ARGUMENT with one line per violation,
// "field = value: rule" ("spec.epochs = -1: must be greater than or equal
// to 0"; the value is left out where it says nothing, as for a missing
// field), fields named by their JSON paths as REST clients write them, and
// a google.rpc.BadRequest detail with a field violation for each (its
// reason is the rule's id, e.g. "int32.gte").
func violations(md protoreflect.MessageDescriptor, verr *protovalidate.ValidationError) error {
	var lines []string
	bad := &errdetails.BadRequest{}
	for _, v := range verr.Violations {
		field := jsonPath(md, v.Proto.GetField())
		text := strings.TrimPrefix(v.Proto.GetMessage(), "value ")
		line := text
		if field != "" {
			line = field + ": " + text
			if val, ok := shown(v); ok && v.Proto.GetRuleId() != "required" {
				line = field + " = " + val + ": " + text
			}
		}
		lines = append(lines, line)
		bad.FieldViolations = append(bad.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: field, Description: text, Reason: v.Proto.GetRuleId(),
		})
	}
	st := status.New(codes.InvalidArgument, strings.Join(lines, "; "))
	if withDetails, err := st.WithDetails(bad); err == nil {
		st = withDetails
	}
	return st.Err()
}

// maxShown bounds a string value quoted in a message; a longer one is left
// out.
const maxShown = 64

// shown renders a violation's scalar value for its message.
func shown(v *protovalidate.Violation) (string, bool) {
	fd := v.FieldDescriptor
	if fd == nil || !v.FieldValue.IsValid() {
		return "", false
	}
	if (fd.IsList() || fd.IsMap()) && len(v.Proto.GetField().GetElements()) > 0 {
		last := v.Proto.GetField().GetElements()[len(v.Proto.GetField().GetElements())-1]
		if last.GetSubscript() == nil {
			return "", false // the whole list or map, not one of its items
		}
	}
	switch val := v.FieldValue.Interface().(type) {
	case string:
		if len(val) > maxShown {
			return "", false // the rule says enough (a length, most likely)
		}
		return strconv.Quote(val), true
	case protoreflect.EnumNumber:
		if fd.Enum() != nil {
			if ev := fd.Enum().Values().ByNumber(val); ev != nil {
				return string(ev.Name()), true
			}
		}
		return strconv.Itoa(int(val)), true
	case bool, int32, int64, uint32, uint64, float32, float64:
		return fmt.Sprint(val), true
	}
	return "", false
}

// jsonPath writes a violation's field path with the fields' JSON names
// ("spec.baseVersion.version", "labels[2]"), walking md's descriptors.
func jsonPath(md protoreflect.MessageDescriptor, path *validatepb.FieldPath) string {
	var b strings.Builder
	for _, el := range path.GetElements() {
		name := el.GetFieldName()
		var fd protoreflect.FieldDescriptor
		if md != nil {
			fd = md.Fields().ByNumber(protoreflect.FieldNumber(el.GetFieldNumber()))
		}
		if fd != nil && !fd.IsExtension() {
			name = fd.JSONName()
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(name)
		switch s := el.GetSubscript().(type) {
		case *validatepb.FieldPathElement_Index:
			fmt.Fprintf(&b, "[%d]", s.Index)
		case *validatepb.FieldPathElement_BoolKey:
			fmt.Fprintf(&b, "[%t]", s.BoolKey)
		case *validatepb.FieldPathElement_IntKey:
			fmt.Fprintf(&b, "[%d]", s.IntKey)
		case *validatepb.FieldPathElement_UintKey:
			fmt.Fprintf(&b, "[%d]", s.UintKey)
		case *validatepb.FieldPathElement_StringKey:
			fmt.Fprintf(&b, "[%q]", s.StringKey)
		}
		md = nil
		if fd != nil {
			switch {
			case fd.IsMap():
				md = fd.MapValue().Message()
			default:
				md = fd.Message()
			}
		}
	}
	return b.String()
}
