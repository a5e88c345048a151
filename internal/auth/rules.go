package auth

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
)

// openServices need no credential: probes and reflection, which say nothing
// a caller could misuse.
var openServices = []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}

// oipService is the Open Inference Protocol's service. Its proto stays as
// the specification writes it, so its rules are this table.
const oipService = "inference.GRPCInferenceService"

var oipRules = map[string]authpb.Scope{
	"ServerLive":     authpb.Scope_SCOPE_PREDICT,
	"ServerReady":    authpb.Scope_SCOPE_PREDICT,
	"ModelReady":     authpb.Scope_SCOPE_PREDICT,
	"ServerMetadata": authpb.Scope_SCOPE_PREDICT,
	"ModelMetadata":  authpb.Scope_SCOPE_PREDICT,
	"ModelInfer":     authpb.Scope_SCOPE_PREDICT,
}

// Rules maps full gRPC method names ("/pkg.Service/Method") to the scope a
// caller needs. A method without a rule is refused: the gate fails closed.
type Rules struct {
	scope map[string]authpb.Scope
	open  map[string]bool
}

// NewRules reads the scope option of every method of every service in
// files (protoregistry.GlobalFiles in the server: the generated packages
// register themselves), adds the Open Inference Protocol's table and the
// open services. It fails if a Shoal service has a method without a scope.
func NewRules(files *protoregistry.Files) (*Rules, error) {
	r := &Rules{scope: map[string]authpb.Scope{}, open: map[string]bool{}}
	for _, s := range openServices {
		r.open[s] = true
	}
	var missing []string
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "shoal.") && fd.Package() != "inference" {
			return true
		}
		svcs := fd.Services()
		for i := range svcs.Len() {
			sd := svcs.Get(i)
			methods := sd.Methods()
			for j := range methods.Len() {
				md := methods.Get(j)
				full := "/" + string(sd.FullName()) + "/" + string(md.Name())
				sc := MethodScope(md)
				if sd.FullName() == oipService {
					sc = oipRules[string(md.Name())]
				}
				if sc == authpb.Scope_SCOPE_UNSPECIFIED {
					missing = append(missing, full)
					continue
				}
				r.scope[full] = sc
			}
		}
		return true
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("auth: methods without a declared scope (add option (shoal.auth.v1.scope) next to each): %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// MethodScope returns the scope option of a method, or SCOPE_UNSPECIFIED.
func MethodScope(md protoreflect.MethodDescriptor) authpb.Scope {
	opts := md.Options()
	if opts == nil {
		return authpb.Scope_SCOPE_UNSPECIFIED
	}
	sc, _ := proto.GetExtension(opts, authpb.E_Scope).(authpb.Scope)
	return sc
}

// Methods returns the full names of the methods that need one of scopes,
// sorted.
func (r *Rules) Methods(scopes ...authpb.Scope) []string {
	var out []string
	for m, sc := range r.scope {
		if slices.Contains(scopes, sc) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// Scope returns the scope fullMethod needs; open is true for methods that
// need none, and ok false for an unknown method.
func (r *Rules) Scope(fullMethod string) (scope authpb.Scope, open, ok bool) {
	if svc, _, found := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/"); found && r.open[svc] {
		return authpb.Scope_SCOPE_UNSPECIFIED, true, true
	}
	scope, ok = r.scope[fullMethod]
	return scope, scope == authpb.Scope_SCOPE_PUBLIC, ok
}
