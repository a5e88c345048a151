package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Bounds of the lease a replica may ask for in a serving report
// (registry.proto's rules bound the rest, the replica name's length too).
const (
	minServingLease = time.Second
	maxServingLease = 10 * time.Minute
)

// servingAlias is one AliasServing as stored in a replica's row. A plain
// struct, so that its JSON is the same for the same report and a report
// that changes nothing is told apart by comparing text.
type servingAlias struct {
	Model   string `json:"model"`
	Alias   string `json:"alias"`
	Version int64  `json:"version"`
	Target  int64  `json:"target"`
	State   int32  `json:"state"`
	Error   string `json:"error,omitempty"`
}

// checkReport checks what the contract's rules cannot say (they check the
// names, versions, states and sizes): printable replica names, a lease
// unless the replica is leaving, and each alias once.
func checkReport(req *registrypb.ReportServingRequest) ([]servingAlias, time.Duration, error) {
	name := req.GetReplica()
	if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil, 0, status.Errorf(codes.InvalidArgument, "replica %q: use printable characters only", name)
	}
	if req.GetLeaving() {
		return nil, 0, nil
	}
	lease := req.GetLease().AsDuration()
	if lease < minServingLease || lease > maxServingLease {
		return nil, 0, status.Errorf(codes.InvalidArgument, "lease %s: must be between %s and %s", lease, minServingLease, maxServingLease)
	}
	out := make([]servingAlias, 0, len(req.GetAliases()))
	for _, a := range req.GetAliases() {
		out = append(out, servingAlias{Model: a.GetModel(), Alias: a.GetAlias(), Version: a.GetVersion(),
			Target: a.GetTargetVersion(), State: int32(a.GetState()), Error: a.GetError()})
	}
	slices.SortFunc(out, func(a, b servingAlias) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Alias, b.Alias))
	})
	for i := 1; i < len(out); i++ {
		if out[i].Model == out[i-1].Model && out[i].Alias == out[i-1].Alias {
			return nil, 0, status.Errorf(codes.InvalidArgument, "%s@%s reported twice", out[i].Model, out[i].Alias)
		}
	}
	return out, lease, nil
}

// ReportServing stores a replica's report. Only a report that differs from
// the replica's last (or brings a replica back, or lets one go) moves the
// serving revision and wakes WatchRollout streams; the others only extend
// the lease.
func (h *handler) ReportServing(ctx context.Context, req *registrypb.ReportServingRequest) (*registrypb.ReportServingResponse, error) {
	aliases, lease, err := checkReport(req)
	if err != nil {
		return nil, err
	}
	text, err := json.Marshal(aliases)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	now := time.Now()
	changed := false
	err = h.db(ctx).Transaction(func(tx *gorm.DB) error {
		var r replicaRow
		err := tx.Where("name = ?", req.GetReplica()).Take(&r).Error
		found := err == nil
		switch {
		case err != nil && !db.IsNotFound(err):
			return fmt.Errorf("read replica: %w", err)
		case req.GetLeaving():
			if !found {
				return nil
			}
			if err := tx.Delete(&r).Error; err != nil {
				return fmt.Errorf("delete replica: %w", err)
			}
		case !found:
			r = replicaRow{Name: req.GetReplica(), Aliases: string(text), ReportedAt: now, ExpiresAt: now.Add(lease)}
			if err := tx.Create(&r).Error; err != nil {
				return fmt.Errorf("create replica: %w", err)
			}
		default:
			same := r.Aliases == string(text) && r.ExpiresAt.After(now)
			r.Aliases, r.ReportedAt, r.ExpiresAt = string(text), now, now.Add(lease)
			if err := tx.Save(&r).Error; err != nil {
				return fmt.Errorf("update replica: %w", err)
			}
			if same {
				return nil
			}
		}
		changed = true
		if err := tx.Model(&servingRevRow{}).Where("id = 1").Update("revision", gorm.Expr("revision + 1")).Error; err != nil {
			return fmt.Errorf("bump serving revision: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		h.svc.serving.Notify()
	}
	return &registrypb.ReportServingResponse{}, nil
}

// WatchRollout sends the rollout's state, then again whenever it changes:
// a replica's report (from this process at once, from another within
// Run's poll), an alias change, or a replica's lease lapsing, which a
// timer set to the earliest lapse catches. It ends after a message whose
// phase is final.
func (h *handler) WatchRollout(req *registrypb.WatchRolloutRequest, stream grpc.ServerStreamingServer[registrypb.WatchRolloutResponse]) error {
	ctx := stream.Context()
	alias := cmp.Or(req.GetAlias(), "production")
	var last *registrypb.WatchRolloutResponse
	for {
		// Subscribe before reading, so that a change committed after the
		// read still wakes this stream.
		reports, aliases := h.svc.serving.Wait(), h.svc.changes.Wait()
		msg, lapse, err := h.rollout(ctx, req.GetModel(), alias, last != nil)
		if err != nil {
			return err
		}
		if want := req.GetVersion(); want != 0 && msg.GetVersion() != want {
			return status.Errorf(codes.Aborted, "%s@%s now names version %d, not %d", msg.GetModel(), alias, msg.GetVersion(), want)
		}
		if !proto.Equal(msg, last) {
			if err := stream.Send(msg); err != nil {
				return err
			}
			last = msg
		}
		if msg.GetPhase() != registrypb.RolloutPhase_ROLLOUT_PHASE_IN_PROGRESS {
			return nil
		}
		if err := h.svc.waitRollout(ctx, reports, aliases, lapse); err != nil {
			return err
		}
	}
}

// waitRollout waits for a change that may move a rollout: a report, an
// alias change, or the lapse of a report's lease (zero: none live).
func (s *Service) waitRollout(ctx context.Context, reports, aliases <-chan struct{}, lapse time.Time) error {
	var expired <-chan time.Time
	if !lapse.IsZero() {
		t := time.NewTimer(time.Until(lapse))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-reports:
	case <-aliases:
	case <-expired:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-s.stopping:
		return status.Error(codes.Unavailable, "the registry is stopping; watch again")
	}
	return nil
}

// rollout reads the alias and the live replicas' reports and tells where
// each replica stands with the alias's version. lapse is when the earliest
// live report runs out (zero: none live). A missing alias is NOT_FOUND, or
// ABORTED when watching had begun.
func (h *handler) rollout(ctx context.Context, model, alias string, watching bool) (*registrypb.WatchRolloutResponse, time.Time, error) {
	tx := h.db(ctx)
	m, err := findModel(tx, model)
	if err != nil {
		return nil, time.Time{}, err
	}
	a, err := findAlias(tx, m, alias)
	if err != nil {
		if watching && status.Code(err) == codes.NotFound {
			return nil, time.Time{}, status.Errorf(codes.Aborted, "alias %q of model %q was deleted", alias, model)
		}
		return nil, time.Time{}, err
	}
	now := time.Now()
	var rows []replicaRow
	if err := tx.Where("expires_at > ?", now).Order("name").Find(&rows).Error; err != nil {
		return nil, time.Time{}, fmt.Errorf("read replicas: %w", err)
	}
	msg := &registrypb.WatchRolloutResponse{Model: model, Alias: alias, Version: a.Version}
	var lapse time.Time
	for _, r := range rows {
		if lapse.IsZero() || r.ExpiresAt.Before(lapse) {
			lapse = r.ExpiresAt
		}
		var served []servingAlias
		if err := json.Unmarshal([]byte(r.Aliases), &served); err != nil {
			return nil, time.Time{}, fmt.Errorf("decode replica %q: %w", r.Name, err)
		}
		msg.Replicas = append(msg.Replicas, replicaState(r.Name, served, model, alias, a.Version))
	}
	msg.Phase = rolloutPhase(msg.GetReplicas())
	return msg, lapse, nil
}

// replicaState is where one replica stands with version of model@alias,
// from its report. A report about another version than the alias's (the
// replica has not seen the alias move yet) says nothing of this one.
func replicaState(name string, served []servingAlias, model, alias string, version int64) *registrypb.ReplicaRollout {
	out := &registrypb.ReplicaRollout{Replica: name, State: registrypb.ServingState_SERVING_STATE_NOT_FOLLOWING}
	i := slices.IndexFunc(served, func(s servingAlias) bool { return s.Model == model && s.Alias == alias })
	if i < 0 {
		return out
	}
	s := served[i]
	out.ServingVersion = s.Version
	switch {
	case s.Version == version:
		out.State = registrypb.ServingState_SERVING_STATE_SERVING
	case s.Target != version:
		out.State = registrypb.ServingState_SERVING_STATE_PENDING
	case registrypb.ServingState(s.State) == registrypb.ServingState_SERVING_STATE_SERVING:
		out.State = registrypb.ServingState_SERVING_STATE_LOADING // swapping in
	default:
		out.State, out.Error = registrypb.ServingState(s.State), s.Error
	}
	return out
}

func rolloutPhase(replicas []*registrypb.ReplicaRollout) registrypb.RolloutPhase {
	following, serving, failed := 0, 0, 0
	for _, r := range replicas {
		switch r.GetState() {
		case registrypb.ServingState_SERVING_STATE_NOT_FOLLOWING:
			continue
		case registrypb.ServingState_SERVING_STATE_SERVING:
			serving++
		case registrypb.ServingState_SERVING_STATE_FAILED:
			failed++
		}
		following++
	}
	switch {
	case following == 0 && len(replicas) > 0:
		return registrypb.RolloutPhase_ROLLOUT_PHASE_NOT_FOLLOWED
	case following == 0:
		return registrypb.RolloutPhase_ROLLOUT_PHASE_IN_PROGRESS
	case serving == following:
		return registrypb.RolloutPhase_ROLLOUT_PHASE_DONE
	case serving+failed == following:
		return registrypb.RolloutPhase_ROLLOUT_PHASE_FAILED
	}
	return registrypb.RolloutPhase_ROLLOUT_PHASE_IN_PROGRESS
}

// servingRevision reads the count of serving changes (see
// v1ServingRevision).
func (s *Service) servingRevision(ctx context.Context) (int64, error) {
	var r servingRevRow
	if err := s.deps.DB.WithContext(ctx).Take(&r, 1).Error; err != nil {
		return 0, fmt.Errorf("read serving revision: %w", err)
	}
	return r.Revision, nil
}

// pruneReplicas deletes the reports of replicas gone since before: they
// count for nothing once their lease has lapsed, and are kept a while only
// so that nothing is deleted under a replica that is merely late.
func (s *Service) pruneReplicas(ctx context.Context, before time.Time) error {
	res := s.deps.DB.WithContext(ctx).Where("expires_at < ?", before).Delete(&replicaRow{})
	if res.Error != nil {
		return fmt.Errorf("prune replicas: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		s.deps.Log.Info("forgot inference replicas that stopped reporting", "replicas", res.RowsAffected)
	}
	return nil
}
