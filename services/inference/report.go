package inference

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

// loadFailure is why the last load of a version an alias names failed;
// retrying says whether the follower tries again.
type loadFailure struct {
	msg      string
	retrying bool
}

// maxReportedError bounds a load error as reported to the Registry.
const maxReportedError = 1024

// failedLoad records why loading k failed, for the serving reports.
func (s *Service) failedLoad(k versionKey, err error, retrying bool) {
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	if len(msg) > maxReportedError {
		msg = msg[:maxReportedError]
	}
	s.mu.Lock()
	s.loadFailures[k] = loadFailure{msg: msg, retrying: retrying}
	s.mu.Unlock()
	s.pokeReport()
}

// loadedAfterAll forgets a failure of k once it has loaded.
func (s *Service) loadedAfterAll(k versionKey) {
	s.mu.Lock()
	delete(s.loadFailures, k)
	s.mu.Unlock()
}

// replicaName is the name this replica reports under: the configured one,
// else its host name, process id and a random suffix. The host name tells
// the pods of a Kubernetes Deployment apart and the process id the
// processes of one host, but containers on the host's network share its
// name and each is process 1: two of them would report as one replica,
// and a rollout would count one of them only.
func replicaName(cfg Config) string {
	if cfg.ReplicaName != "" {
		return cfg.ReplicaName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "inference"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:4])
}

// pokeReport asks the reporter to report now (a change).
func (s *Service) pokeReport() {
	select {
	case s.reportNow <- struct{}{}:
	default:
	}
}

// servingReport is what this replica serves for every alias it follows,
// and where it stands with the version each names.
func (s *Service) servingReport() *registrypb.ReportServingRequest {
	req := &registrypb.ReportServingRequest{Replica: s.replica, Lease: durationpb.New(s.cfg.ReportLease)}
	s.mu.Lock()
	followed := map[aliasKey]bool{}
	for k := range s.aliases {
		followed[k] = true
	}
	if s.cfg.DefaultModel != "" {
		followed[aliasKey{s.cfg.DefaultModel, defaultAlias}] = true
	}
	for k := range followed {
		a := &registrypb.AliasServing{Model: k.model, Alias: k.alias, Version: s.aliases[k]}
		if s.synced {
			a.TargetVersion = s.view[k]
		}
		switch f, failed := s.loadFailures[versionKey{k.model, a.TargetVersion}]; {
		case a.Version == a.TargetVersion:
			a.State = registrypb.ServingState_SERVING_STATE_SERVING
		case failed && f.retrying:
			a.State, a.Error = registrypb.ServingState_SERVING_STATE_RETRYING, f.msg
		case failed:
			a.State, a.Error = registrypb.ServingState_SERVING_STATE_FAILED, f.msg
		default:
			a.State = registrypb.ServingState_SERVING_STATE_LOADING
		}
		req.Aliases = append(req.Aliases, a)
	}
	s.mu.Unlock()
	slices.SortFunc(req.Aliases, func(a, b *registrypb.AliasServing) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Alias, b.Alias))
	})
	return req
}

// report tells the Registry what this replica serves: at once after each
// change, and every ReportInterval otherwise, so that its lease holds.
// When ctx ends it tells the Registry it is leaving, so that a rollout
// stops waiting for it at once.
func (s *Service) report(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReportInterval)
	defer t.Stop()
	failing := false
	for {
		err := s.deps.Panics.Call("serving report", func() error {
			rctx, cancel := context.WithTimeout(ctx, s.cfg.ReportInterval)
			defer cancel()
			_, err := s.deps.Registry.ReportServing(rctx, s.servingReport())
			return err
		})
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			failing = true
			s.deps.Log.Warn("inference: telling the Registry what this replica serves failed; retrying (rollouts see it as silent meanwhile)",
				"replica", s.replica, "err", err)
		case err == nil && failing:
			failing = false
			s.deps.Log.Info("inference: telling the Registry what this replica serves works again", "replica", s.replica)
		}
		select {
		case <-ctx.Done():
			s.leave(ctx)
			return
		case <-s.reportNow:
		case <-t.C:
		}
	}
}

// leave tells the Registry this replica stops serving, within a short
// bound of its own: ctx has ended.
func (s *Service) leave(ctx context.Context) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := s.deps.Panics.Call("serving report", func() error {
		_, err := s.deps.Registry.ReportServing(lctx, &registrypb.ReportServingRequest{Replica: s.replica, Leaving: true})
		return err
	})
	if err != nil {
		s.deps.Log.Info("inference: could not tell the Registry this replica is leaving; it drops out when its lease lapses",
			"replica", s.replica, "lease", s.cfg.ReportLease, "err", err)
	}
}
