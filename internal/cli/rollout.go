package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

func (p *program) modelsRolloutCmd() *cobra.Command {
	var alias string
	cmd := &cobra.Command{
		Use:   "rollout MODEL",
		Short: "Show which version each inference replica serves for an alias (--alias, default production)",
		Long: `Shows the inference replicas that reported to the Registry within their lease: for each,
the version it serves for the alias and where it stands with the version the alias names
(serving, loading, failed with the reason, retrying, or not yet seen).`,
		Args: exactArgs(1),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withRegistry(cmd, func(ctx context.Context, c registrypb.RegistryServiceClient) error {
			stream, err := c.WatchRollout(ctx, &registrypb.WatchRolloutRequest{Model: args[0], Alias: alias})
			if err != nil {
				return err
			}
			r, err := stream.Recv() // the current state; later ones would be changes
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, r)
			}
			return printRollout(p.env.Stdout, r)
		})
	}
	cmd.Flags().StringVar(&alias, "alias", "production", "alias whose rollout to show")
	return cmd
}

func printRollout(out io.Writer, r *registrypb.WatchRolloutResponse) error {
	fmt.Fprintf(out, "%s@%s -> version %d: %s\n", r.GetModel(), r.GetAlias(), r.GetVersion(), phaseText(r))
	if len(r.GetReplicas()) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REPLICA\tSERVING\tSTATE\tERROR")
	for _, rep := range r.GetReplicas() {
		serving := "-"
		if v := rep.GetServingVersion(); v > 0 {
			serving = fmt.Sprint(v)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", printable(rep.GetReplica()), serving,
			strings.ToLower(strings.TrimPrefix(rep.GetState().String(), "SERVING_STATE_")), dash(rep.GetError()))
	}
	return w.Flush()
}

func phaseText(r *registrypb.WatchRolloutResponse) string {
	switch r.GetPhase() {
	case registrypb.RolloutPhase_ROLLOUT_PHASE_DONE:
		return "every replica that follows the alias serves it"
	case registrypb.RolloutPhase_ROLLOUT_PHASE_FAILED:
		return "it failed to load on some replicas"
	case registrypb.RolloutPhase_ROLLOUT_PHASE_NOT_FOLLOWED:
		return "no replica follows the alias"
	}
	if len(r.GetReplicas()) == 0 {
		return "no inference replica has reported to the Registry"
	}
	return "in progress"
}

// replicaText says where a replica stands with version, as a person reads
// it: "serving version 2", "loading version 2 (serving 1)", "load failed:
// ... (serving 1)".
func replicaText(rep *registrypb.ReplicaRollout, version int64) string {
	serving := "nothing"
	if v := rep.GetServingVersion(); v > 0 {
		serving = fmt.Sprintf("version %d", v)
	}
	switch rep.GetState() {
	case registrypb.ServingState_SERVING_STATE_SERVING:
		return fmt.Sprintf("serving version %d", version)
	case registrypb.ServingState_SERVING_STATE_LOADING:
		return fmt.Sprintf("loading version %d; still serving %s", version, serving)
	case registrypb.ServingState_SERVING_STATE_FAILED:
		return fmt.Sprintf("load failed: %s; still serving %s", printable(rep.GetError()), serving)
	case registrypb.ServingState_SERVING_STATE_RETRYING:
		return fmt.Sprintf("load failed, retrying: %s; still serving %s", printable(rep.GetError()), serving)
	case registrypb.ServingState_SERVING_STATE_PENDING:
		return fmt.Sprintf("has not seen version %d yet; still serving %s", version, serving)
	case registrypb.ServingState_SERVING_STATE_NOT_FOLLOWING:
		return "does not follow the alias (loads it on the first request that names it)"
	}
	return rep.GetState().String()
}

// rolloutMaxAttempts bounds how often waitRollout watches again after the
// Registry became unreachable mid-watch (a second apart).
const rolloutMaxAttempts = 30

// waitRollout prints each replica as it turns over to version of
// model@alias, until every replica that follows the alias serves it. It
// fails naming the replicas that do not: with FAILED_PRECONDITION when
// they failed to load it or none follows the alias, ABORTED when the alias
// moved on, and DEADLINE_EXCEEDED when ctx's bound passed first, saying
// what each still serves.
func (p *program) waitRollout(ctx context.Context, c registrypb.RegistryServiceClient, model, alias string, version int64, bound time.Duration) error {
	out := p.env.Stdout
	fmt.Fprintf(out, "waiting for the inference replicas to serve version %d (up to %s)\n", version, bound)
	shown := map[string]*registrypb.ReplicaRollout{}
	var last *registrypb.WatchRolloutResponse
	for attempt := 0; ; {
		stream, err := c.WatchRollout(ctx, &registrypb.WatchRolloutRequest{Model: model, Alias: alias, Version: version},
			grpc.WaitForReady(last != nil))
		for err == nil {
			var r *registrypb.WatchRolloutResponse
			if r, err = stream.Recv(); err != nil {
				break
			}
			attempt, last = 0, r
			live := map[string]bool{}
			for _, rep := range r.GetReplicas() {
				live[rep.GetReplica()] = true
				if prev := shown[rep.GetReplica()]; prev == nil || !proto.Equal(prev, rep) {
					fmt.Fprintf(out, "  %s: %s\n", printable(rep.GetReplica()), replicaText(rep, version))
					shown[rep.GetReplica()] = rep
				}
			}
			for name := range shown {
				if !live[name] {
					fmt.Fprintf(out, "  %s: gone (left, or silent for its lease)\n", printable(name))
					delete(shown, name)
				}
			}
			switch r.GetPhase() {
			case registrypb.RolloutPhase_ROLLOUT_PHASE_DONE:
				fmt.Fprintf(out, "%s@%s: version %d is served by every replica that follows it (%s)\n",
					model, alias, version, count(len(following(r)), "replica"))
				return nil
			case registrypb.RolloutPhase_ROLLOUT_PHASE_FAILED:
				return status.Error(codes.FailedPrecondition, rolloutShortfall(r, version, "did not load it"))
			case registrypb.RolloutPhase_ROLLOUT_PHASE_NOT_FOLLOWED:
				return status.Errorf(codes.FailedPrecondition,
					"no inference replica follows %s@%s: replicas follow their default model's production alias and the aliases requests name, and load version %d on the first request that names it",
					model, alias, version)
			}
		}
		switch {
		case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			if last == nil {
				return status.Errorf(codes.DeadlineExceeded, "%s@%s: no answer about the replicas within %s (--timeout)", model, alias, bound)
			}
			if len(following(last)) == 0 {
				return status.Errorf(codes.DeadlineExceeded, "%s@%s: no inference replica reported to the Registry within %s (--timeout)", model, alias, bound)
			}
			return status.Error(codes.DeadlineExceeded, rolloutShortfall(last, version, fmt.Sprintf("did not serve it within %s (--timeout)", bound)))
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%s@%s: the rollout's stream ended before the rollout did", model, alias)
		case status.Code(err) != codes.Unavailable || last == nil || attempt >= rolloutMaxAttempts:
			return err
		}
		attempt++
		fmt.Fprintf(out, "lost the registry (%v); watching again\n", status.Convert(err).Message())
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// following is the replicas that follow the rollout's alias.
func following(r *registrypb.WatchRolloutResponse) []*registrypb.ReplicaRollout {
	var out []*registrypb.ReplicaRollout
	for _, rep := range r.GetReplicas() {
		if rep.GetState() != registrypb.ServingState_SERVING_STATE_NOT_FOLLOWING {
			out = append(out, rep)
		}
	}
	return out
}

// rolloutShortfall names the replicas that follow the alias and do not
// serve version, and why: "fashion@production: 1 of 2 replicas did not
// load version 3: host-12: load failed: ...; still serving version 2".
func rolloutShortfall(r *registrypb.WatchRolloutResponse, version int64, what string) string {
	all := following(r)
	var behind []string
	for _, rep := range all {
		if rep.GetState() != registrypb.ServingState_SERVING_STATE_SERVING {
			behind = append(behind, printable(rep.GetReplica())+": "+replicaText(rep, version))
		}
	}
	what = strings.Replace(what, " it", fmt.Sprintf(" version %d", version), 1)
	return fmt.Sprintf("%s@%s: %d of %s %s: %s", r.GetModel(), r.GetAlias(), len(behind), count(len(all), "replica"), what,
		strings.Join(behind, "; "))
}
