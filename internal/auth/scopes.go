// Package auth is Shoal's one gate: a gRPC interceptor that checks every
// call's credential against the scope its RPC declares in proto/, limits
// its rate, and records state-changing calls in the audit trail. REST
// reaches it through the gateway, which forwards the authorization header;
// nothing checks credentials anywhere else.
package auth

import (
	"fmt"
	"slices"
	"strings"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
)

// Scopes is a set of authpb.Scope values.
type Scopes uint16

// UserScopes are the scopes a token can be given.
var UserScopes = []authpb.Scope{authpb.Scope_SCOPE_PREDICT, authpb.Scope_SCOPE_READ, authpb.Scope_SCOPE_WRITE, authpb.Scope_SCOPE_ADMIN}

// AllUserScopes holds every scope a token can be given.
var AllUserScopes = ScopesOf(UserScopes...)

// ScopesOf returns the set of the given scopes.
func ScopesOf(scopes ...authpb.Scope) Scopes {
	var s Scopes
	for _, x := range scopes {
		s |= 1 << uint(x)
	}
	return s
}

// Has reports whether s holds scope.
func (s Scopes) Has(scope authpb.Scope) bool { return s&(1<<uint(scope)) != 0 }

// List returns the scopes of s in their enum order.
func (s Scopes) List() []authpb.Scope {
	var out []authpb.Scope
	for v := range authpb.Scope_name {
		if sc := authpb.Scope(v); sc != authpb.Scope_SCOPE_UNSPECIFIED && s.Has(sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return out
}

// String is the comma-separated short names: "predict,read".
func (s Scopes) String() string {
	names := make([]string, 0, 4)
	for _, sc := range s.List() {
		names = append(names, ScopeName(sc))
	}
	return strings.Join(names, ",")
}

// ScopeName is a scope's short name: "read" for SCOPE_READ.
func ScopeName(s authpb.Scope) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SCOPE_"))
}

// ParseScopes reads a comma-separated list of user scopes, by short name
// ("read") or enum name ("SCOPE_READ"), in any case. The empty string is the
// empty set.
func ParseScopes(list string) (Scopes, error) {
	var s Scopes
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		sc, err := ParseScope(part)
		if err != nil {
			return 0, err
		}
		s |= ScopesOf(sc)
	}
	return s, nil
}

// ParseScope reads one user scope.
func ParseScope(name string) (authpb.Scope, error) {
	want := strings.ToUpper(name)
	if !strings.HasPrefix(want, "SCOPE_") {
		want = "SCOPE_" + want
	}
	for _, sc := range UserScopes {
		if sc.String() == want {
			return sc, nil
		}
	}
	names := make([]string, len(UserScopes))
	for i, sc := range UserScopes {
		names[i] = ScopeName(sc)
	}
	return 0, fmt.Errorf("unknown scope %q: use %s", name, strings.Join(names, ", "))
}
