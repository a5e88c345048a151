package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
)

// trainFlags are `shoal train`'s settings.
type trainFlags struct {
	dataset, model, arch, promote, backend string
	optimizer, schedule, augment, base     string
	freeze, batchNorm                      string
	snapshot, seed                         int64
	epochs, batch, size, channels          int
	patience, stages, warmup               int
	lr, valFraction, weightDecay           float64
	backboneLRScale                        float64
	follow                                 bool
}

func registerTrainFlags(fs *pflag.FlagSet) *trainFlags {
	f := &trainFlags{}
	fs.StringVar(&f.dataset, "dataset", "", "dataset to train on (required)")
	fs.Int64Var(&f.snapshot, "snapshot", 0, "snapshot version; 0 takes a new snapshot")
	fs.StringVar(&f.model, "model", "", "model to register the result under; default the dataset's name")
	fs.StringVar(&f.arch, "architecture", "", "network (small-cnn, small-cnn-wide, resnet-small, resnet18); default small-cnn")
	fs.IntVar(&f.epochs, "epochs", 0, "passes over the training data; default 12")
	fs.IntVar(&f.batch, "batch-size", 0, "images per step; default 64")
	fs.Float64Var(&f.lr, "learning-rate", 0, "initial learning rate; default 0.001")
	fs.StringVar(&f.optimizer, "optimizer", "", "adam, adamw or sgd (momentum 0.9); default adam")
	fs.StringVar(&f.schedule, "schedule", "", "learning-rate schedule: constant, cosine or step; default cosine")
	fs.Float64Var(&f.weightDecay, "weight-decay", 0, "weight decay of the weight matrices; default 0")
	fs.StringVar(&f.augment, "augment", "", `augmentation: "none" or a comma-separated list of hflip, vflip, crop=S, jitter=J; default hflip`)
	fs.IntVar(&f.patience, "early-stopping-patience", 0, "stop after this many epochs without a better validation accuracy; default 0 (off)")
	fs.StringVar(&f.base, "base", "", "fine-tune from a registered version, as MODEL:VERSION")
	fs.StringVar(&f.freeze, "freeze", "", `with --base: "backbone" trains only a new head on the base's frozen backbone, whose features are computed once in ONNX Runtime and cached (augmentation off unless --augment); default none`)
	fs.IntVar(&f.stages, "unfreeze-stages", 0, "with --base: train only the last N stages (runs of the graph at one resolution) and the head; the frozen part runs once per image in ONNX Runtime, cached")
	fs.Float64Var(&f.backboneLRScale, "backbone-lr-scale", 0, "the backbone's learning rate as a fraction of the head's, in (0, 1]; default 1")
	fs.IntVar(&f.warmup, "warmup-epochs", 0, "epochs of linear learning-rate warm-up before the schedule; default 0")
	fs.StringVar(&f.batchNorm, "batch-norm", "", "batch-norm statistics: frozen or update; default update for Shoal architectures, frozen for imported models")
	fs.IntVar(&f.size, "image-size", 0, "input height and width; default per architecture")
	fs.IntVar(&f.channels, "channels", 0, "input channels, 1 or 3; default per architecture")
	fs.Float64Var(&f.valFraction, "validation-fraction", 0, "share of the train split held out for validation; default 0.2")
	fs.Int64Var(&f.seed, "seed", 0, "seed for the split, initialisation and shuffling")
	fs.StringVar(&f.backend, "backend", "", "compute backend (onnx or go); default the server's")
	fs.StringVar(&f.promote, "promote", "never", "move the production alias: never, if-better or always")
	fs.BoolVar(&f.follow, "follow", false, "follow the job's progress until it ends")
	return f
}

func (f *trainFlags) spec() (*trainerpb.JobSpec, error) {
	if f.dataset == "" {
		return nil, errors.New("--dataset is required")
	}
	policies := map[string]trainerpb.PromotionPolicy{
		"never": trainerpb.PromotionPolicy_PROMOTION_POLICY_NEVER, "if-better": trainerpb.PromotionPolicy_PROMOTION_POLICY_IF_BETTER,
		"always": trainerpb.PromotionPolicy_PROMOTION_POLICY_ALWAYS,
	}
	p, ok := policies[f.promote]
	if !ok {
		return nil, fmt.Errorf("--promote=%q: want never, if-better or always", f.promote)
	}
	spec := &trainerpb.JobSpec{
		Dataset: f.dataset, SnapshotVersion: f.snapshot, Model: f.model, Architecture: f.arch,
		ImageSize: int32(f.size), Channels: int32(f.channels), Epochs: int32(f.epochs), BatchSize: int32(f.batch),
		LearningRate: f.lr, ValidationFraction: f.valFraction, Seed: f.seed, Backend: f.backend, Promotion: p,
		WeightDecay: f.weightDecay, EarlyStoppingPatience: int32(f.patience),
		BackboneLearningRateScale: f.backboneLRScale, WarmupEpochs: int32(f.warmup),
	}
	batchNorms := map[string]trainerpb.BatchNorm{
		"": trainerpb.BatchNorm_BATCH_NORM_UNSPECIFIED, "frozen": trainerpb.BatchNorm_BATCH_NORM_FROZEN,
		"update": trainerpb.BatchNorm_BATCH_NORM_UPDATE,
	}
	if spec.BatchNorm, ok = batchNorms[f.batchNorm]; !ok {
		return nil, fmt.Errorf("--batch-norm=%q: want frozen or update", f.batchNorm)
	}
	optimizers := map[string]trainerpb.Optimizer{
		"": trainerpb.Optimizer_OPTIMIZER_UNSPECIFIED, "adam": trainerpb.Optimizer_OPTIMIZER_ADAM,
		"adamw": trainerpb.Optimizer_OPTIMIZER_ADAMW, "sgd": trainerpb.Optimizer_OPTIMIZER_SGD,
	}
	if spec.Optimizer, ok = optimizers[f.optimizer]; !ok {
		return nil, fmt.Errorf("--optimizer=%q: want adam, adamw or sgd", f.optimizer)
	}
	schedules := map[string]trainerpb.LearningRateSchedule{
		"": trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_UNSPECIFIED, "constant": trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_CONSTANT,
		"cosine": trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_COSINE, "step": trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_STEP,
	}
	if spec.Schedule, ok = schedules[f.schedule]; !ok {
		return nil, fmt.Errorf("--schedule=%q: want constant, cosine or step", f.schedule)
	}
	if f.augment != "" {
		a, err := ml.ParseAugmentation(f.augment)
		if err != nil {
			return nil, fmt.Errorf("--augment=%q: %w", f.augment, err)
		}
		spec.Augmentation = &trainerpb.Augmentation{HorizontalFlip: a.HorizontalFlip, VerticalFlip: a.VerticalFlip,
			CropMinScale: float32(a.CropMinScale), ColorJitter: float32(a.ColorJitter)}
	}
	if f.base != "" {
		model, version, found := strings.Cut(f.base, ":")
		n, err := strconv.ParseInt(version, 10, 64)
		if !found || model == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("--base=%q: want MODEL:VERSION, e.g. fashion:3", f.base)
		}
		spec.BaseVersion = &registrypb.VersionRef{Model: model, Version: n}
	}
	switch f.freeze {
	case "", "none":
	case "backbone":
		if spec.BaseVersion == nil {
			return nil, errors.New("--freeze=backbone needs --base: the backbone is the base version's network")
		}
		spec.TrainLayers = trainerpb.TrainLayers_TRAIN_LAYERS_HEAD
	default:
		return nil, fmt.Errorf("--freeze=%q: want backbone or none", f.freeze)
	}
	if f.stages != 0 {
		switch {
		case f.stages < 0:
			return nil, fmt.Errorf("--unfreeze-stages=%d: want a positive number of stages", f.stages)
		case spec.BaseVersion == nil:
			return nil, errors.New("--unfreeze-stages needs --base: the stages are the base version's")
		case spec.TrainLayers != trainerpb.TrainLayers_TRAIN_LAYERS_UNSPECIFIED:
			return nil, errors.New("--unfreeze-stages and --freeze=backbone exclude each other")
		}
		spec.TrainLayers, spec.UnfrozenStages = trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES, int32(f.stages)
	}
	return spec, nil
}

func (p *program) trainCmd() *cobra.Command {
	var watch string
	cmd := &cobra.Command{
		Use:   "train --dataset D [flags]",
		Short: "Train a model on a dataset; --follow to watch it to the end",
		Long: `Queues a training job on the trainer. With --follow it shows the job's progress and a
per-epoch table until the job ends, and exits with code 6 unless the job succeeded.
On a terminal the current epoch's progress is one line redrawn in place; anywhere
else only plain lines are written (one per epoch), with no control characters.
Zero-valued flags take the server's defaults (see GET /v1/architectures).`,
		Args: exactArgs(0),
	}
	f := registerTrainFlags(cmd.Flags())
	cmd.Flags().StringVar(&watch, "watch", "", "follow an existing job by id instead of starting one")
	_ = cmd.Flags().MarkHidden("watch")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		p.deprecated(cmd, "watch", "shoal jobs watch JOB_ID")
		if watch != "" {
			return p.withTrainer(cmd, longTimeout, func(ctx context.Context, c trainerpb.TrainerServiceClient) error {
				return p.followJob(ctx, c, watch)
			})
		}
		spec, err := f.spec()
		if err != nil {
			return UsageError(err)
		}
		return p.withTrainer(cmd, longTimeout, func(ctx context.Context, c trainerpb.TrainerServiceClient) error {
			resp, err := c.StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: spec})
			if err != nil {
				return err
			}
			j := resp.GetJob()
			s := j.GetSpec()
			arch := s.GetArchitecture()
			base := s.GetBaseVersion().GetModel() + ":" + strconv.FormatInt(s.GetBaseVersion().GetVersion(), 10)
			switch s.GetTrainLayers() {
			case trainerpb.TrainLayers_TRAIN_LAYERS_HEAD:
				arch = "a new head on the frozen backbone of " + base
			case trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES:
				arch = fmt.Sprintf("the last %d stage(s) and the head of %s", s.GetUnfrozenStages(), base)
			}
			fmt.Fprintf(p.env.Stdout, "job %s queued: %s on %s snapshot %d, %d epochs, batch %d, learning rate %g, %dx%dx%d\n",
				j.GetId(), arch, s.GetDataset(), s.GetSnapshotVersion(), s.GetEpochs(), s.GetBatchSize(),
				s.GetLearningRate(), s.GetChannels(), s.GetImageSize(), s.GetImageSize())
			if !f.follow {
				fmt.Fprintf(p.env.Stdout, "follow it with: shoal jobs watch %s\n", j.GetId())
				return nil
			}
			return p.followJob(ctx, c, j.GetId())
		})
	}
	return cmd
}

// withTrainer runs fn with a Trainer client within the command's bound.
func (p *program) withTrainer(cmd *cobra.Command, bound time.Duration, fn func(context.Context, trainerpb.TrainerServiceClient) error) error {
	return p.conn.call(cmd.Context(), bound, func(ctx context.Context, conn *grpc.ClientConn) error {
		return fn(ctx, trainerpb.NewTrainerServiceClient(conn))
	})
}

// followJob prints a job's events until its final state, reconnecting from
// the last sequence seen when the server restarts. It fails unless the job
// succeeded.
func (p *program) followJob(ctx context.Context, c trainerpb.TrainerServiceClient, id string) error {
	jp := &jobPrinter{out: p.env.Stdout, terminal: p.env.StdoutTerminal, id: id}
	var after int64
	for attempt := 0; ; {
		// Once the job's history has started to arrive, a lost server is
		// waited for (it restarts, the job resumes); before that, an
		// unreachable server fails the command at once.
		stream, err := c.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id, AfterSequence: after}, grpc.WaitForReady(after > 0))
		for err == nil {
			var ev *trainerpb.WatchJobResponse
			if ev, err = stream.Recv(); err == nil {
				attempt = 0
				after = ev.GetSequence()
				if done, ferr := jp.event(ev); done {
					return ferr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("job %s: the stream ended before the job did", id)
		}
		if status.Code(err) != codes.Unavailable || after == 0 || attempt >= 30 {
			return err
		}
		attempt++
		jp.clearLine()
		fmt.Fprintf(p.env.Stdout, "lost the trainer (%v); reconnecting from event %d\n", status.Convert(err).Message(), after)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// jobPrinter renders a job's events: a table row per epoch and a line per
// log, evaluation and state; on a terminal also the running epoch's
// progress, one line rewritten in place.
type jobPrinter struct {
	out        io.Writer
	terminal   bool
	id         string
	progress   bool // a progress line is on screen
	headerDone bool
}

func (p *jobPrinter) clearLine() {
	if p.progress {
		fmt.Fprint(p.out, "\r\033[K")
		p.progress = false
	}
}

const epochHeader = "%5s  %8s  %10s  %9s  %9s  %8s  %7s  %8s  %s\n"

func printEpochHeader(out io.Writer) {
	fmt.Fprintf(out, epochHeader, "epoch", "rate", "train loss", "train acc", "val loss", "val acc", "img/s", "time", "best")
}

// printEpoch writes one epoch's row; fixed widths, since rows arrive one at
// a time.
func printEpoch(out io.Writer, e *trainerpb.EpochMetrics) {
	best := ""
	if e.GetBest() {
		best = "*"
	}
	fmt.Fprintf(out, "%5d  %8.2g  %10.4f  %9.4f  %9.4f  %8.4f  %7.0f  %8s  %s\n", e.GetEpoch(), e.GetLearningRate(), e.GetTrainLoss(), e.GetTrainAccuracy(),
		e.GetValLoss(), e.GetValAccuracy(), e.GetImagesPerSecond(), e.GetDuration().AsDuration().Round(100*time.Millisecond), best)
}

// event prints ev and reports whether it ended the job, with the job's error.
func (p *jobPrinter) event(ev *trainerpb.WatchJobResponse) (bool, error) {
	if g := ev.GetProgress(); g != nil {
		if !p.terminal {
			return false, nil // a log or a pipe gets the epoch rows only
		}
		p.clearLine()
		eta := "?"
		if g.GetEta() != nil {
			eta = g.GetEta().AsDuration().Round(time.Second).String()
		}
		fmt.Fprintf(p.out, "epoch %d/%d  step %d/%d  %s  loss %.4f  %.0f img/s  ETA %s",
			g.GetEpoch(), g.GetEpochs(), g.GetStep(), g.GetSteps(), bar(g.GetStep(), g.GetSteps(), 20),
			g.GetTrainLoss(), g.GetImagesPerSecond(), eta)
		p.progress = true
		return false, nil
	}
	p.clearLine()
	switch {
	case ev.GetEpoch() != nil:
		if !p.headerDone {
			printEpochHeader(p.out)
			p.headerDone = true
		}
		printEpoch(p.out, ev.GetEpoch())
	case ev.GetLog() != nil:
		fmt.Fprintf(p.out, "%s: %s\n", ev.GetLog().GetLevel(), ev.GetLog().GetMessage())
	case ev.GetEvaluation() != nil:
		m := ev.GetEvaluation()
		fmt.Fprintf(p.out, "test: accuracy %.4f, loss %.4f on %d images\n", m.GetTestAccuracy(), m.GetTestLoss(), m.GetTestExamples())
		for _, c := range m.GetPerClass() {
			fmt.Fprintf(p.out, "  %-24s precision %.3f  recall %.3f  f1 %.3f  (%d)\n", c.GetLabel(), c.GetPrecision(), c.GetRecall(), c.GetF1(), c.GetSupport())
		}
	case ev.GetRegistered() != nil:
		fmt.Fprintf(p.out, "registered %s version %d\n", ev.GetRegistered().GetModel(), ev.GetRegistered().GetVersion())
	case ev.GetState() != nil:
		st := ev.GetState()
		name := strings.TrimPrefix(st.GetState().String(), "JOB_STATE_")
		if st.GetReason() != "" {
			fmt.Fprintf(p.out, "%s: %s\n", name, st.GetReason())
		} else {
			fmt.Fprintln(p.out, name)
		}
		switch st.GetState() {
		case trainerpb.JobState_JOB_STATE_SUCCEEDED:
			return true, nil
		case trainerpb.JobState_JOB_STATE_FAILED, trainerpb.JobState_JOB_STATE_CANCELLED:
			return true, &jobEndedError{id: p.id, state: name, reason: st.GetReason()}
		}
	}
	return false, nil
}

// bar draws done/total as a fixed-width bar.
func bar(done, total int32, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	n := int(int64(done) * int64(width) / int64(total))
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}
