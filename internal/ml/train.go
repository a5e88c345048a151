package ml

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/norm"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/metric"
)

// Config is a training run's hyper-parameters and hooks.
type Config struct {
	Architecture string // "" means DefaultArchitecture.
	NumClasses   int
	Epochs       int
	BatchSize    int
	// LearningRate is the initial rate; Schedule changes it per epoch.
	LearningRate float64
	Optimizer    Optimizer // "" means OptimizerAdam.
	Schedule     Schedule  // "" means ScheduleConstant.
	// WeightDecay is the decay coefficient (see the optimizers); 0 is none.
	WeightDecay float64
	// WarmupEpochs, if positive, come before the schedule: epoch e <=
	// WarmupEpochs trains at LearningRate × e / (WarmupEpochs + 1), and the
	// schedule then runs over the remaining epochs (see RateAt).
	WarmupEpochs int
	// BackboneRateScale, in (0, 1), scales every step's change of the
	// weights outside the classification layer (discriminative
	// fine-tuning); 0 or 1 trains all at one rate. It scales the update,
	// not the gradient, so that it means the same for Adam, whose step does
	// not depend on the gradient's scale, as for SGD.
	BackboneRateScale float64
	// FreezeBatchNorm keeps the batch-norm averages of a Shoal architecture
	// as they are and normalises with them in training too, as inference
	// does. Imported models always do (see ImportONNX).
	FreezeBatchNorm bool
	// Augment transforms the training images of every batch.
	Augment Augmentation
	// EarlyStoppingPatience, if positive, stops the run after that many
	// epochs without a better validation accuracy.
	EarlyStoppingPatience int
	// Base, if set, is the weights the run starts from (fine-tuning); same
	// architecture and input shape. NewHead leaves the classification
	// layer freshly initialised, as it must be when the labels differ.
	Base    *Weights
	NewHead bool
	// Import, if set, is an ONNX model the run fine-tunes instead (see
	// ImportONNX); Architecture, Base and NewHead are then ignored, and the
	// images must have Import.Spec.Shape.
	Import *Imported
	Seed   int64
	// Backend is a GoMLX backend config; "" means $GOMLX_BACKEND or DefaultBackend.
	Backend string
	// BatchNormImages, if positive, is how many training images re-estimate
	// the batch-norm averages with the epoch's final weights before each
	// validation (see recomputeBatchNorm). Off by default: the running
	// averages kept during training serve as well for the architectures
	// here.
	BatchNormImages int
	// CheckpointDir, if set, receives the run's state after every epoch,
	// and a run started with a checkpoint there resumes after its last
	// completed epoch (same architecture, input shape, classes and seed
	// required; the per-epoch shuffles are derived from seed and epoch, so
	// a resumed run sees the same batches as an uninterrupted one).
	CheckpointDir string
	// OnCheckpoint, if set, is called with the checkpoint file after each
	// epoch's checkpoint is written to CheckpointDir, before OnEpoch: the
	// caller may copy it somewhere that outlives this machine.
	OnCheckpoint func(epoch int, file string)

	// OnStep, if set, is called after every training step.
	OnStep func(StepProgress)
	// OnEpoch, if set, is called after every epoch's validation.
	OnEpoch func(EpochMetrics)
}

// StepProgress reports one training step.
type StepProgress struct {
	Epoch, Step, StepsPerEpoch int // Epoch and Step count from 1.
	Images                     int // the step's batch: images it trained on.
	Loss                       float64
	// ImagesPerSecond is the epoch's throughput so far, excluding the first
	// step (graph compilation).
	ImagesPerSecond float64
	Elapsed         time.Duration // since Train started.
}

// EpochMetrics are one epoch's results. Val fields are zero without
// validation data.
type EpochMetrics struct {
	Epoch               int
	TrainLoss, TrainAcc float64
	ValLoss, ValAcc     float64
	LearningRate        float64 // the rate this epoch trained at.
	ImagesPerSecond     float64
	Duration            time.Duration
	Best                bool // this epoch's weights are the best so far.
}

// Result is a finished training run. Model holds the best-validation weights.
type Result struct {
	Model     *Model
	Epochs    []EpochMetrics
	BestEpoch int
	// StoppedEarly is set when early stopping ended the run before its
	// last epoch.
	StoppedEarly bool
}

func (c *Config) validate() error {
	switch {
	case c.NumClasses < 2:
		return fmt.Errorf("need at least 2 classes, got %d", c.NumClasses)
	case c.Epochs <= 0:
		return fmt.Errorf("epochs must be positive, got %d", c.Epochs)
	case c.BatchSize <= 0:
		return fmt.Errorf("batch size must be positive, got %d", c.BatchSize)
	case !(c.LearningRate > 0):
		return fmt.Errorf("learning rate must be positive, got %g", c.LearningRate)
	case c.BatchNormImages < 0:
		return fmt.Errorf("batch-norm images must not be negative, got %d", c.BatchNormImages)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight decay must be a non-negative number, got %g", c.WeightDecay)
	case c.EarlyStoppingPatience < 0:
		return fmt.Errorf("early-stopping patience must not be negative, got %d", c.EarlyStoppingPatience)
	case c.WarmupEpochs < 0 || c.WarmupEpochs >= c.Epochs:
		return fmt.Errorf("warm-up epochs must be from 0 to epochs-1 (%d), got %d", c.Epochs-1, c.WarmupEpochs)
	case !(c.BackboneRateScale >= 0 && c.BackboneRateScale <= 1):
		return fmt.Errorf("the backbone's learning-rate scale must be in (0, 1], got %g", c.BackboneRateScale)
	}
	if err := checkOptimizer(c.Optimizer); err != nil {
		return err
	}
	if err := checkSchedule(c.Schedule); err != nil {
		return err
	}
	return c.Augment.Validate()
}

// Train trains a new model on trainData, validating on valData (optional)
// after every epoch and keeping the weights of the epoch with the best
// validation accuracy. It stops with ctx's error at the next step once ctx
// is done. Training drops the last partial batch of each epoch so that one
// compiled graph serves every step.
func Train(ctx context.Context, cfg Config, trainData, valData *Data) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Import != nil && cfg.Import.NumClasses != cfg.NumClasses {
		return nil, fmt.Errorf("the imported model has %d classes, this run %d", cfg.Import.NumClasses, cfg.NumClasses)
	}
	if cfg.Import != nil && trainData.Shape != cfg.Import.Spec.Shape {
		return nil, fmt.Errorf("the imported model takes %s images, not %s", cfg.Import.Spec.Shape, trainData.Shape)
	}
	arch, err := LookupArchitecture(cfg.Architecture)
	if cfg.Import != nil {
		arch, err = importedArch(), nil
	}
	if err != nil {
		return nil, err
	}
	if err := trainData.Validate(cfg.NumClasses); err != nil {
		return nil, fmt.Errorf("training data: %w", err)
	}
	if valData != nil {
		if err := valData.Validate(cfg.NumClasses); err != nil {
			return nil, fmt.Errorf("validation data: %w", err)
		}
		if valData.Shape != trainData.Shape {
			return nil, fmt.Errorf("validation images are %s, training images %s", valData.Shape, trainData.Shape)
		}
	}
	if trainData.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("%d training images is fewer than one batch of %d", trainData.Len(), cfg.BatchSize)
	}
	backend, err := NewBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	if cfg.Import != nil {
		return trainImported(ctx, cfg, backend, trainData, valData)
	}
	mean, std := ChannelStats(trainData)
	m, err := NewModel(backend, arch, trainData.Shape, cfg.NumClasses, mean, std, cfg.Seed)
	if err != nil {
		backend.Finalize()
		return nil, err
	}
	m.ownsBackend = true
	if cfg.FreezeBatchNorm {
		m.store.SetParam(frozenBatchNormParam, true)
	}
	if cfg.Base != nil {
		if err := cfg.Base.install(m, cfg.NewHead); err != nil {
			m.Close()
			return nil, fmt.Errorf("fine-tuning: %w", err)
		}
	}
	res, err := fit(ctx, cfg, m, trainData, valData)
	if err != nil {
		m.Close()
		return nil, err
	}
	return res, nil
}

// trainImported is Train for an imported ONNX model.
func trainImported(ctx context.Context, cfg Config, backend compute.Backend, trainData, valData *Data) (*Result, error) {
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, cfg.Seed)
	m := &Model{Arch: importedArch(), Shape: trainData.Shape, NumClasses: cfg.NumClasses, backend: backend, store: store, ownsBackend: true}
	if err := newImportedModel(m, cfg.Import); err != nil {
		m.Close()
		return nil, err
	}
	res, err := fit(ctx, cfg, m, trainData, valData)
	if err != nil {
		m.Close()
		return nil, err
	}
	return res, nil
}

func fit(ctx context.Context, cfg Config, m *Model, trainData, valData *Data) (*Result, error) {
	return fitEpochs(ctx, cfg, m, trainData, valData, nil)
}

// fitEpochs is fit where epochData, if set, gives each epoch's training
// data in place of trainData (same length and labels): head-only
// training's features of augmented images.
func fitEpochs(ctx context.Context, cfg Config, m *Model, trainData, valData *Data, epochData func(context.Context, int) (*Data, error)) (*Result, error) {
	start := time.Now()
	trainer := train.NewTrainer(m.backend, m.store, m.logitsGraph, loss.SparseCategoricalCrossEntropyLogits, newOptimizer(cfg, m.inHead),
		[]metric.Interface{metric.NewSparseCategoricalAccuracy("Accuracy", "acc")}, nil)
	bnImages := cfg.BatchNormImages

	steps := trainData.Len() / cfg.BatchSize
	order := make([]int, trainData.Len())
	res := &Result{Model: m}
	var best snapshot
	bestAcc := -1.0
	firstEpoch := 1
	if cfg.CheckpointDir != "" {
		st, err := readState(cfg.CheckpointDir)
		if err != nil {
			return nil, err
		}
		if st != nil {
			if st.Architecture != m.Arch.Name || st.Shape != m.Shape || st.NumClasses != m.NumClasses || st.Seed != cfg.Seed {
				return nil, fmt.Errorf("checkpoint in %s is for %s %s with %d classes and seed %d, not this run's %s %s, %d classes, seed %d",
					cfg.CheckpointDir, st.Architecture, st.Shape, st.NumClasses, st.Seed, m.Arch.Name, m.Shape, m.NumClasses, cfg.Seed)
			}
			if err := installVars(m, st.Current); err != nil {
				return nil, err
			}
			best, bestAcc, firstEpoch = loadedSnapshot(st.Best), st.BestScore, st.Epoch+1
			res.Epochs, res.BestEpoch = st.Epochs, st.BestEpoch
		}
	}
	var scratch []float32
	if cfg.Augment.Active() {
		scratch = make([]float32, trainData.Shape.Size())
	}
	for epoch := firstEpoch; epoch <= cfg.Epochs; epoch++ {
		// Checked before the epoch, so that a run resumed after the
		// deciding epoch stops too.
		if p := cfg.EarlyStoppingPatience; p > 0 && res.BestEpoch > 0 && epoch-1-res.BestEpoch >= p {
			res.StoppedEarly = true
			break
		}
		epochStart := time.Now()
		rate := cfg.RateAt(epoch)
		if err := setLearningRate(m.store, rate); err != nil {
			return nil, err
		}
		for i := range order {
			order[i] = i
		}
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(epoch)))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if err := catch(trainer.ResetTrainMetrics); err != nil {
			return nil, fmt.Errorf("resetting metrics: %w", err)
		}
		epochTrain := trainData
		if epochData != nil {
			var err error
			if epochTrain, err = epochData(ctx, epoch); err != nil {
				return nil, err
			}
		}
		var lossSum, acc float64
		var steadyStart time.Time
		for step := 1; step <= steps; step++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("training stopped in epoch %d step %d: %w", epoch, step, err)
			}
			var augment func([]float32)
			if scratch != nil {
				augment = func(images []float32) {
					cfg.Augment.apply(images, trainData.Shape, augmentRNG(cfg.Seed, epoch, step), scratch)
				}
			}
			batch := makeBatch(epochTrain, order[(step-1)*cfg.BatchSize:step*cfg.BatchSize], augment)
			var metrics []*tensors.Tensor
			err := catch(func() error {
				var err error
				metrics, err = trainer.TrainStep(batch)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("training step %d of epoch %d: %w", step, epoch, err)
			}
			// Metrics: batch loss, moving-average loss, epoch-mean accuracy.
			stepLoss := scalar(metrics[0])
			acc = scalar(metrics[2])
			for _, t := range metrics {
				t.MustFinalizeAll()
			}
			if stepLoss != stepLoss { // NaN
				return nil, fmt.Errorf("training diverged (loss is NaN) in epoch %d step %d; try a lower learning rate", epoch, step)
			}
			lossSum += stepLoss
			if step == 1 {
				steadyStart = time.Now()
			}
			if cfg.OnStep != nil {
				p := StepProgress{Epoch: epoch, Step: step, StepsPerEpoch: steps, Images: cfg.BatchSize, Loss: stepLoss, Elapsed: time.Since(start)}
				if step > 1 {
					p.ImagesPerSecond = float64((step-1)*cfg.BatchSize) / time.Since(steadyStart).Seconds()
				}
				cfg.OnStep(p)
			}
		}
		em := EpochMetrics{
			Epoch: epoch, TrainLoss: lossSum / float64(steps), TrainAcc: acc, LearningRate: rate,
		}
		if steps > 1 {
			em.ImagesPerSecond = float64((steps-1)*cfg.BatchSize) / time.Since(steadyStart).Seconds()
		}
		if bnImages > 0 {
			if err := recomputeBatchNorm(m, trainData, order[:min(bnImages, len(order))], cfg.BatchSize); err != nil {
				return nil, err
			}
		}
		m.dropCompiled() // the epoch changed the batch-norm averages.
		score := em.TrainAcc
		if valData != nil {
			ev, err := Evaluate(m, valData)
			if err != nil {
				return nil, fmt.Errorf("validating epoch %d: %w", epoch, err)
			}
			em.ValLoss, em.ValAcc = ev.Loss, ev.Accuracy
			score = ev.Accuracy
		}
		if score > bestAcc {
			bestAcc = score
			em.Best = true
			res.BestEpoch = epoch
			var err error
			if best, err = takeSnapshot(m); err != nil {
				return nil, err
			}
		}
		em.Duration = time.Since(epochStart)
		res.Epochs = append(res.Epochs, em)
		if cfg.CheckpointDir != "" {
			if err := saveState(cfg, m, res, epoch, bestAcc, best); err != nil {
				return nil, err
			}
			if cfg.OnCheckpoint != nil {
				cfg.OnCheckpoint(epoch, CheckpointFile(cfg.CheckpointDir))
			}
		}
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(em)
		}
	}
	if err := best.restore(m); err != nil {
		return nil, err
	}
	return res, nil
}

// makeBatch copies the indexed images into a [B,C,H,W] tensor and labels
// into [B,1] (the shape GoMLX's sparse cross-entropy wants); augment, if
// set, transforms the copied images first.
func makeBatch(d *Data, indices []int, augment func([]float32)) train.Batch {
	size := d.Shape.Size()
	images := make([]float32, len(indices)*size)
	labels := make([]int32, len(indices))
	for i, idx := range indices {
		copy(images[i*size:], d.Image(idx))
		labels[i] = d.Labels[idx]
	}
	if augment != nil {
		augment(images)
	}
	return train.Batch{
		Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(images, len(indices), d.Shape.Channels, d.Shape.Height, d.Shape.Width)},
		Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(labels, len(indices), 1)},
	}
}

func scalar(t *tensors.Tensor) float64 {
	var v float64
	t.MustConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			v = float64(f[0])
		case []float64:
			v = f[0]
		}
	})
	return v
}

// recomputeBatchNorm re-estimates every batch-norm mean and variance with
// the current weights over the given training images: the averages'
// weights are reset, then each batch runs forward in training mode, where
// batch norm folds the batch's statistics into its averages (an exact
// running mean until the momentum caps it). GoMLX's own pass
// (norm.UpdateBatchNormAverages) runs its graph in inference mode, where
// ONNX Runtime's backend bakes the averages into the graph as constants:
// every step then started from the averages of the graph's compilation,
// and the result was the last batch's statistics, not the images'.
func recomputeBatchNorm(m *Model, d *Data, indices []int, batch int) error {
	batch = min(batch, len(indices))
	err := catch(func() error {
		if err := norm.ResetBatchNormWeights(m.backend, m.store); err != nil {
			return err
		}
		exec, err := model.NewExec(m.backend, m.store, func(scope *model.Scope, x *Node) *Node {
			scope.Store().SetTraining(x.Graph(), true)
			return m.logitsGraph(scope, x)
		})
		if err != nil {
			return err
		}
		defer exec.Finalize()
		for start := 0; start+batch <= len(indices); start += batch {
			b := makeBatch(d, indices[start:start+batch], nil)
			out, err := exec.Exec(b.Inputs[0])
			b.Labels[0].MustFinalizeAll()
			if err != nil {
				return err
			}
			for _, t := range out {
				t.MustFinalizeAll()
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("re-estimating batch-norm averages: %w", err)
	}
	m.dropCompiled()
	return nil
}

// Defaults are the settings a run takes when its caller has no opinion:
// what reaches the Trainer's Fashion-MNIST target (see the README's
// Benchmarks) and trains the small demo sets well.
func Defaults() Config {
	return Config{
		Architecture: DefaultArchitecture,
		Epochs:       12,
		BatchSize:    64,
		LearningRate: 1e-3,
		Optimizer:    OptimizerAdam,
		Schedule:     ScheduleCosine,
		Augment:      Augmentation{HorizontalFlip: true},
	}
}
