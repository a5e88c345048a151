package auth

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// resourceFields are the request fields that name what a call changes.
var resourceFields = map[protoreflect.Name]bool{
	"name": true, "dataset": true, "model": true, "version": true, "alias": true,
	"job_id": true, "id": true, "snapshot_version": true, "base_version": true,
}

// Resource names what a request changes, for the audit trail: its fields
// that identify things ("model=fish alias=production version=2"), at the
// top level and one message deep (an upload's header, a job's spec). It
// never includes content, secrets or free text.
func Resource(m proto.Message) string {
	if m == nil {
		return ""
	}
	var parts []string
	var walk func(msg protoreflect.Message, prefix string, depth int)
	walk = func(msg protoreflect.Message, prefix string, depth int) {
		// In declaration order: Range's order is undefined, and protobuf-go
		// varies it from one binary to the next on purpose.
		fields := msg.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if !msg.Has(fd) {
				continue
			}
			v := msg.Get(fd)
			switch {
			case fd.IsList() || fd.IsMap():
			case fd.Kind() == protoreflect.MessageKind && depth == 0:
				walk(v.Message(), string(fd.Name())+".", depth+1)
			case resourceFields[fd.Name()] && fd.Kind() == protoreflect.StringKind:
				parts = append(parts, fmt.Sprintf("%s%s=%s", prefix, fd.Name(), clip(v.String())))
			case resourceFields[fd.Name()] && (fd.Kind() == protoreflect.Int64Kind || fd.Kind() == protoreflect.Int32Kind):
				parts = append(parts, fmt.Sprintf("%s%s=%d", prefix, fd.Name(), v.Int()))
			}
		}
	}
	walk(m.ProtoReflect(), "", 0)
	return strings.Join(parts, " ")
}

// clip keeps a value short and on one line.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
