package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

func (p *program) jobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, show, watch and cancel training jobs",
	}
	cmd.AddCommand(p.jobsListCmd(), p.jobsShowCmd(), p.jobsWatchCmd(), p.jobsCancelCmd())
	return cmd
}

var jobStates = map[string]trainerpb.JobState{
	"queued": trainerpb.JobState_JOB_STATE_QUEUED, "running": trainerpb.JobState_JOB_STATE_RUNNING,
	"succeeded": trainerpb.JobState_JOB_STATE_SUCCEEDED, "failed": trainerpb.JobState_JOB_STATE_FAILED,
	"cancelled": trainerpb.JobState_JOB_STATE_CANCELLED,
}

func stateName(s trainerpb.JobState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATE_"))
}

func (p *program) jobsListCmd() *cobra.Command {
	var state, dataset string
	var limit int
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List training jobs, newest first",
		Args:    exactArgs(0),
	}
	out := addOutputFlag(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state: queued, running, succeeded, failed or cancelled")
	cmd.Flags().StringVar(&dataset, "dataset", "", "only jobs on this dataset")
	cmd.Flags().IntVar(&limit, "limit", 50, "jobs to list")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		req := &trainerpb.ListJobsRequest{Dataset: dataset}
		if state != "" {
			s, ok := jobStates[strings.ToLower(state)]
			if !ok {
				return usagef("--state=%q: want queued, running, succeeded, failed or cancelled", state)
			}
			req.State = s
		}
		return p.withTrainer(cmd, longTimeout, func(ctx context.Context, c trainerpb.TrainerServiceClient) error {
			all := &trainerpb.ListJobsResponse{}
			for len(all.Jobs) < limit {
				req.PageSize = int32(min(limit-len(all.Jobs), 1000))
				resp, err := c.ListJobs(ctx, req)
				if err != nil {
					return err
				}
				all.Jobs = append(all.Jobs, resp.GetJobs()...)
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			if out.structured() {
				return out.print(p.env.Stdout, all)
			}
			return printJobs(p.env.Stdout, all.GetJobs())
		})
	}
	return cmd
}

// bestVal is the best validation accuracy of a job's epochs so far.
func bestVal(j *trainerpb.Job) float64 {
	best := 0.0
	for _, e := range j.GetEpochs() {
		best = max(best, e.GetValAccuracy())
	}
	return best
}

func jobResult(j *trainerpb.Job) string {
	if r := j.GetResult(); r.GetModel() != "" {
		return fmt.Sprintf("%s v%d", r.GetModel(), r.GetVersion())
	}
	return "-"
}

func printJobs(out io.Writer, jobs []*trainerpb.Job) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATE\tDATASET\tARCHITECTURE\tEPOCHS\tVAL_ACC\tTEST_ACC\tRESULT\tCREATED")
	for _, j := range jobs {
		s := j.GetSpec()
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", j.GetId(), stateName(j.GetState()),
			fmt.Sprintf("%s@%d", s.GetDataset(), s.GetSnapshotVersion()), dash(s.GetArchitecture()),
			len(j.GetEpochs()), s.GetEpochs(), formatMetric(bestVal(j)), formatMetric(j.GetTestMetrics().GetTestAccuracy()),
			jobResult(j), formatTime(j.GetCreateTime().AsTime()))
	}
	return w.Flush()
}

func (p *program) jobsShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show JOB_ID",
		Short: "Show a job: its spec, state, epochs and result",
		Args:  exactArgs(1),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return p.withTrainer(cmd, longTimeout, func(ctx context.Context, c trainerpb.TrainerServiceClient) error {
			resp, err := c.GetJob(ctx, &trainerpb.GetJobRequest{JobId: args[0]})
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, resp)
			}
			return printJob(p.env.Stdout, resp.GetJob())
		})
	}
	return cmd
}

func printJob(out io.Writer, j *trainerpb.Job) error {
	s := j.GetSpec()
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "job:\t%s\n", j.GetId())
	fmt.Fprintf(w, "state:\t%s\n", stateName(j.GetState()))
	if j.GetError() != "" {
		fmt.Fprintf(w, "error:\t%s\n", j.GetError())
	}
	fmt.Fprintf(w, "dataset:\t%s (snapshot %d)\n", s.GetDataset(), s.GetSnapshotVersion())
	fmt.Fprintf(w, "model:\t%s\n", dash(s.GetModel()))
	fmt.Fprintf(w, "architecture:\t%s, %dx%dx%d\n", dash(s.GetArchitecture()), s.GetChannels(), s.GetImageSize(), s.GetImageSize())
	fmt.Fprintf(w, "training:\t%d epochs, batch %d, learning rate %g\n", s.GetEpochs(), s.GetBatchSize(), s.GetLearningRate())
	if b := s.GetBaseVersion(); b.GetModel() != "" {
		frozen := ""
		switch s.GetTrainLayers() {
		case trainerpb.TrainLayers_TRAIN_LAYERS_HEAD:
			frozen = ", backbone frozen (head only)"
		case trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES:
			frozen = fmt.Sprintf(", last %d stage(s) and head trained", s.GetUnfrozenStages())
		}
		fmt.Fprintf(w, "base:\t%s v%d%s\n", b.GetModel(), b.GetVersion(), frozen)
	}
	fmt.Fprintf(w, "promotion:\t%s\n", strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.GetPromotion().String(), "PROMOTION_POLICY_"), "_", "-")))
	fmt.Fprintf(w, "created:\t%s\n", formatTime(j.GetCreateTime().AsTime()))
	if j.GetStartTime() != nil {
		fmt.Fprintf(w, "started:\t%s\n", formatTime(j.GetStartTime().AsTime()))
	}
	if j.GetEndTime() != nil {
		fmt.Fprintf(w, "ended:\t%s", formatTime(j.GetEndTime().AsTime()))
		if j.GetStartTime() != nil {
			fmt.Fprintf(w, " (ran %s)", j.GetEndTime().AsTime().Sub(j.GetStartTime().AsTime()).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	if m := j.GetTestMetrics(); m != nil {
		fmt.Fprintf(w, "test accuracy / loss:\t%s / %s\n", formatMetric(m.GetTestAccuracy()), formatMetric(m.GetTestLoss()))
	}
	fmt.Fprintf(w, "result:\t%s\n", jobResult(j))
	if err := w.Flush(); err != nil {
		return err
	}
	if len(j.GetEpochs()) > 0 {
		fmt.Fprintln(out)
		printEpochHeader(out)
		for _, e := range j.GetEpochs() {
			printEpoch(out, e)
		}
	}
	return nil
}

func (p *program) jobsWatchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch JOB_ID",
		Short: "Follow a job until it ends (its history first; reconnects if the server restarts)",
		Long: `Follows a job: replays its events, then follows it live until it ends, reconnecting
when the server restarts. Exits with code 6 unless the job succeeded. On a terminal
the running epoch's progress is one line redrawn in place; anywhere else only plain
lines are written.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withTrainer(cmd, longTimeout, func(ctx context.Context, c trainerpb.TrainerServiceClient) error {
				return p.followJob(ctx, c, args[0])
			})
		},
	}
}

func (p *program) jobsCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a queued or running job",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.withTrainer(cmd, longTimeout, func(ctx context.Context, c trainerpb.TrainerServiceClient) error {
				resp, err := c.CancelJob(ctx, &trainerpb.CancelJobRequest{JobId: args[0]})
				if err != nil {
					return err
				}
				if st := resp.GetJob().GetState(); st == trainerpb.JobState_JOB_STATE_RUNNING {
					fmt.Fprintf(p.env.Stdout, "job %s: cancelling; it stops at its next step (shoal jobs watch %s)\n", args[0], args[0])
				} else {
					fmt.Fprintf(p.env.Stdout, "job %s: %s\n", args[0], stateName(st))
				}
				return nil
			})
		},
	}
}
