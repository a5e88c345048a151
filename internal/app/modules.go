package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Module names, as --target takes them.
const (
	All       = "all"
	Auth      = "auth"
	Dataset   = "dataset"
	Trainer   = "trainer"
	Registry  = "registry"
	Inference = "inference"
	Gateway   = "gateway"
)

// Services are the gRPC services; each can run in its own process.
var Services = []string{Auth, Dataset, Trainer, Registry, Inference}

// Modules are everything --target can name, in start order: a module
// starts after every module it calls (see calls), and stops before them.
var Modules = []string{Auth, Registry, Dataset, Trainer, Inference, Gateway}

// calls is the module graph: which services each module calls through
// their gRPC clients. A test checks that Modules respects it. Every
// module's gate also asks Auth to check tokens (see gated).
var calls = map[string][]string{
	Trainer:   {Dataset, Registry},
	Inference: {Registry},
	Gateway:   {Auth, Dataset, Trainer, Registry, Inference},
}

// gated are the modules that serve calls through the auth gate: a process
// running any of them without Auth checks tokens with a remote Auth.
var gated = []string{Registry, Dataset, Trainer, Inference, Gateway}

// storageNeeds says which shared storage a module uses.
type storageNeeds struct{ db, blob bool }

var storage = map[string]storageNeeds{
	Auth:     {db: true},
	Dataset:  {db: true, blob: true},
	Trainer:  {db: true, blob: true},
	Registry: {db: true, blob: true},
	// Inference reads model artifacts from the blob store by the key the
	// Registry gives, so replicas need the same store as the Registry.
	Inference: {blob: true},
}

func needs(targets []string) storageNeeds {
	var n storageNeeds
	for _, t := range targets {
		n.db = n.db || storage[t].db
		n.blob = n.blob || storage[t].blob
	}
	return n
}

// ParseTarget turns a --target value into modules in start order.
func ParseTarget(target string) ([]string, error) {
	if strings.TrimSpace(target) == "" {
		return nil, errors.New("--target is empty: use all, or a comma-separated list of " + strings.Join(Modules, ", "))
	}
	var out []string
	for _, t := range strings.Split(target, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == All:
			out = append(out, Modules...)
		case slices.Contains(Modules, t):
			out = append(out, t)
		default:
			return nil, fmt.Errorf("--target: unknown module %q: use all, or a comma-separated list of %s", t, strings.Join(Modules, ", "))
		}
	}
	sorted := make([]string, 0, len(out))
	for _, m := range Modules {
		if slices.Contains(out, m) {
			sorted = append(sorted, m)
		}
	}
	return sorted, nil
}

func runsAll(targets []string) bool { return len(targets) == len(Modules) }

// Calls returns the services module m calls.
func Calls(m string) []string { return slices.Clone(calls[m]) }
