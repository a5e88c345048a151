package ml

import (
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// Optimizer names a gradient-descent variant.
type Optimizer string

// Known optimizers.
const (
	// OptimizerAdam is Adam; a weight decay is an L2 penalty added to the
	// gradients (coupled with Adam's scaling, as PyTorch's Adam does).
	OptimizerAdam Optimizer = "adam"
	// OptimizerAdamW is Adam with decoupled weight decay (Loshchilov &
	// Hutter): each step also shrinks the weights by rate × decay.
	OptimizerAdamW Optimizer = "adamw"
	// OptimizerSGD is stochastic gradient descent with momentum
	// (SGDMomentum); a weight decay is an L2 penalty added to the gradients.
	OptimizerSGD Optimizer = "sgd"
)

// SGDMomentum is the momentum of OptimizerSGD (PyTorch's formulation:
// v = μv + g; w -= rate × v).
const SGDMomentum = 0.9

// Schedule names a learning-rate schedule. The rate changes between epochs,
// never within one, so that every epoch trains at the one rate it reports.
type Schedule string

// Known schedules.
const (
	ScheduleConstant Schedule = "constant"
	// ScheduleCosine decays the rate along half a cosine over all epochs:
	// epoch e of E trains at rate × (1 + cos(π(e-1)/E)) / 2.
	ScheduleCosine Schedule = "cosine"
	// ScheduleStep multiplies the rate by 0.1 once half the epochs are done
	// and again at three quarters.
	ScheduleStep Schedule = "step"
)

// LearningRateAt is the rate epoch (from 1) of epochs trains at.
func LearningRateAt(s Schedule, base float64, epoch, epochs int) float64 {
	switch s {
	case ScheduleCosine:
		return base * (1 + math.Cos(math.Pi*float64(epoch-1)/float64(epochs))) / 2
	case ScheduleStep:
		// Epochs after the first half (and after three quarters) of the
		// run: done = epoch-1 epochs completed before this one.
		done := float64(epoch - 1)
		rate := base
		if done >= 0.5*float64(epochs) {
			rate *= 0.1
		}
		if done >= 0.75*float64(epochs) {
			rate *= 0.1
		}
		return rate
	}
	return base
}

// RateAt is the rate epoch (from 1) trains at: a linear warm-up over
// WarmupEpochs, then Schedule over the remaining epochs, as if the run
// started after the warm-up.
func (c *Config) RateAt(epoch int) float64 {
	if w := c.WarmupEpochs; w > 0 {
		if epoch <= w {
			return c.LearningRate * float64(epoch) / float64(w+1)
		}
		return LearningRateAt(c.Schedule, c.LearningRate, epoch-w, c.Epochs-w)
	}
	return LearningRateAt(c.Schedule, c.LearningRate, epoch, c.Epochs)
}

func checkOptimizer(o Optimizer) error {
	switch o {
	case "", OptimizerAdam, OptimizerAdamW, OptimizerSGD:
		return nil
	}
	return fmt.Errorf("unknown optimizer %q (known: %s, %s, %s)", o, OptimizerAdam, OptimizerAdamW, OptimizerSGD)
}

func checkSchedule(s Schedule) error {
	switch s {
	case "", ScheduleConstant, ScheduleCosine, ScheduleStep:
		return nil
	}
	return fmt.Errorf("unknown learning-rate schedule %q (known: %s, %s, %s)", s, ScheduleConstant, ScheduleCosine, ScheduleStep)
}

// learningRatePath is where GoMLX's optimizers keep the learning rate when
// handed the root scope, as train.Trainer does: one non-trainable scalar
// that fit sets before each epoch.
var learningRatePath = path.Join("/", optimizer.Scope, optimizer.ParamLearningRate)

// setLearningRate sets (creating it if needed) the variable the optimizer
// reads its rate from at every step.
func setLearningRate(store *model.Store, rate float64) error {
	if v := store.GetVariable(learningRatePath); v != nil {
		if err := v.SetValue(tensors.FromScalar(float32(rate))); err != nil {
			return fmt.Errorf("setting the learning rate: %w", err)
		}
		return nil
	}
	return catch(func() error {
		optimizer.LearningRateVarWithValue(store.RootScope(), dtypes.Float32, rate)
		return nil
	})
}

// newOptimizer builds cfg's optimizer; inHead tells the classification
// layer's variables from the backbone's for cfg.BackboneRateScale.
func newOptimizer(cfg Config, inHead func(*model.Variable) bool) optimizer.Interface {
	o := baseOptimizer(cfg)
	if s := cfg.BackboneRateScale; s > 0 && s < 1 {
		return &scaledBackbone{inner: o, scale: s, inHead: inHead}
	}
	return o
}

func baseOptimizer(cfg Config) optimizer.Interface {
	switch cfg.Optimizer {
	case OptimizerAdamW:
		adam := optimizer.Adam().LearningRate(cfg.LearningRate).Done()
		if cfg.WeightDecay == 0 {
			return adam
		}
		return &decoupledDecay{inner: adam.(gradientOptimizer), decay: cfg.WeightDecay}
	case OptimizerSGD:
		return &sgdMomentum{rate: cfg.LearningRate, momentum: SGDMomentum, decay: cfg.WeightDecay}
	}
	adam := optimizer.Adam().LearningRate(cfg.LearningRate).Done()
	if cfg.WeightDecay == 0 {
		return adam
	}
	return &l2Decay{inner: adam.(gradientOptimizer), decay: cfg.WeightDecay}
}

// gradientOptimizer is an optimizer that can apply given gradients, as
// GoMLX's Adam can.
type gradientOptimizer interface {
	optimizer.Interface
	UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType)
}

// decays reports whether weight decay applies to v: weight matrices only,
// not biases, batch-norm scales and offsets or other vectors, whose decay
// only hurts (the usual practice).
func decays(v *model.Variable) bool {
	return v.Shape().Rank() >= 2 && !strings.Contains(v.Path(), "/normalize/")
}

// trainedVariables lists the variables the gradients of
// BuildTrainableVariablesGradientsGraph belong to, in their order.
func trainedVariables(scope *model.Scope, g *Graph) []*model.Variable {
	var vars []*model.Variable
	for v := range scope.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	return vars
}

// l2Decay adds decay × w to the gradient of every weight matrix, then lets
// the inner optimizer apply the gradients.
type l2Decay struct {
	inner gradientOptimizer
	decay float64
}

func (o *l2Decay) UpdateGraph(scope *model.Scope, g *Graph, loss *Node) {
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	for i, v := range trainedVariables(scope, g) {
		if i < len(grads) && decays(v) {
			grads[i] = Add(grads[i], MulScalar(v.NodeValue(g), o.decay))
		}
	}
	o.inner.UpdateGraphWithGradients(scope, grads, loss.DType())
}

func (o *l2Decay) Clear(scope *model.Scope) error { return o.inner.Clear(scope) }

// decoupledDecay is AdamW's weight decay: after the inner optimizer's
// step, every weight matrix also shrinks by rate × decay × its value before
// the step. GoMLX's own (AdamConfig.WeightDecay) decays every variable,
// biases and batch-norm parameters included.
type decoupledDecay struct {
	inner gradientOptimizer
	decay float64
}

func (o *decoupledDecay) UpdateGraph(scope *model.Scope, g *Graph, loss *Node) {
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	vars := trainedVariables(scope, g)
	before := make([]*Node, len(vars))
	for i, v := range vars {
		before[i] = v.NodeValue(g)
	}
	o.inner.UpdateGraphWithGradients(scope, grads, loss.DType())
	rate := optimizer.LearningRateVar(scope, loss.DType(), 0).NodeValue(g)
	for i, v := range vars {
		if !decays(v) {
			continue
		}
		r := rate
		if r.DType() != before[i].DType() {
			r = ConvertDType(r, before[i].DType())
		}
		v.SetNodeValue(Sub(v.NodeValue(g), Mul(r, MulScalar(before[i], o.decay))))
	}
}

func (o *decoupledDecay) Clear(scope *model.Scope) error { return o.inner.Clear(scope) }

// sgdMomentum is SGD with momentum and L2 weight decay; GoMLX v0.28.8's
// SGD has neither.
type sgdMomentum struct {
	rate, momentum, decay float64
}

const sgdScope = "SGDMomentum"

func (o *sgdMomentum) UpdateGraph(scope *model.Scope, g *Graph, loss *Node) {
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	vars := trainedVariables(scope, g)
	if len(vars) != len(grads) {
		panic(fmt.Sprintf("sgd: %d gradients for %d trainable variables", len(grads), len(vars)))
	}
	rate := optimizer.LearningRateVar(scope, loss.DType(), o.rate).NodeValue(g)
	_ = optimizer.IncrementGlobalStep(g, loss.DType())
	for i, v := range vars {
		w := v.NodeValue(g)
		grad := grads[i]
		if o.decay > 0 && decays(v) {
			grad = Add(grad, MulScalar(w, o.decay))
		}
		shape := v.Shape().Clone()
		velVar := scope.Store().Scope(path.Join("/", sgdScope, v.Scope())).
			WithInitializer(initializer.Zero).
			VariableWithShape(v.Name()+"_velocity", shapes.Make(shape.DType, shape.Dimensions...)).
			SetTrainable(false)
		vel := Add(MulScalar(velVar.NodeValue(g), o.momentum), grad)
		velVar.SetNodeValue(vel)
		r := rate
		if r.DType() != w.DType() {
			r = ConvertDType(r, w.DType())
		}
		v.SetNodeValue(Sub(w, Mul(r, vel)))
	}
}

func (o *sgdMomentum) Clear(scope *model.Scope) error {
	return scope.Store().DeleteVariablesInScope(path.Join("/", sgdScope))
}

// scaledBackbone makes the inner optimizer's step of every backbone
// variable scale times as large: w' = w + scale × (inner(w) - w). For SGD
// that is exactly a learning rate scale times as large; for Adam too,
// whose moments do not depend on the rate. PyTorch's parameter groups with
// lr × scale do the same.
type scaledBackbone struct {
	inner  optimizer.Interface
	scale  float64
	inHead func(*model.Variable) bool
}

func (o *scaledBackbone) UpdateGraph(scope *model.Scope, g *Graph, loss *Node) {
	var vars []*model.Variable
	var before []*Node
	for _, v := range trainedVariables(scope, g) {
		if !o.inHead(v) {
			vars = append(vars, v)
			before = append(before, v.NodeValue(g))
		}
	}
	o.inner.UpdateGraph(scope, g, loss)
	for i, v := range vars {
		after := v.NodeValue(g)
		v.SetNodeValue(Add(before[i], MulScalar(Sub(after, before[i]), o.scale)))
	}
}

func (o *scaledBackbone) Clear(scope *model.Scope) error { return o.inner.Clear(scope) }
