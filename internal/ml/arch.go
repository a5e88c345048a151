package ml

import (
	"fmt"
	"slices"
	"strings"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
)

// DefaultArchitecture is used when a job names none.
const DefaultArchitecture = "small-cnn"

// Architecture is a named network. Build receives normalised NHWC images and
// returns [N, numClasses] logits.
type Architecture struct {
	Name        string
	Description string
	// MinSize and MaxSize bound the input height and width (inclusive).
	MinSize, MaxSize int
	// DefaultSize and DefaultChannels are the input the network is meant
	// for, which a job that names no input gets.
	DefaultSize, DefaultChannels int

	Build func(scope *model.Scope, x *Node, numClasses int) *Node
}

// DefaultInput is the square input of DefaultSize and DefaultChannels.
func (a Architecture) DefaultInput() InputShape {
	return InputShape{Channels: a.DefaultChannels, Height: a.DefaultSize, Width: a.DefaultSize}
}

// CheckInput reports whether the architecture can take images of shape s.
func (a Architecture) CheckInput(s InputShape) error {
	if s.Channels != 1 && s.Channels != 3 {
		return fmt.Errorf("architecture %q takes 1 (grayscale) or 3 (RGB) channels, got %d", a.Name, s.Channels)
	}
	for _, d := range []int{s.Height, s.Width} {
		if d < a.MinSize || d > a.MaxSize {
			return fmt.Errorf("architecture %q takes images from %dx%d to %dx%d pixels, got %dx%d",
				a.Name, a.MinSize, a.MinSize, a.MaxSize, a.MaxSize, s.Height, s.Width)
		}
	}
	return nil
}

// Architectures lists the known architectures, default first. It returns a
// fresh slice so callers cannot alter the registry.
func Architectures() []Architecture {
	return []Architecture{
		{
			Name:        "small-cnn",
			Description: "conv/max-pool/batch-norm blocks (16, 32, ... channels) down to 8x8 or less, then a 128-unit hidden layer; fast default for 28x28 grayscale and small RGB",
			MinSize:     8, MaxSize: 128,
			DefaultSize: 28, DefaultChannels: 1,
			Build: func(scope *model.Scope, x *Node, numClasses int) *Node {
				return smallCNN(scope, x, numClasses, 16)
			},
		},
		{
			Name:        "small-cnn-wide",
			Description: "small-cnn with twice the channels (32, 64, ...): slower, a little more accurate",
			MinSize:     8, MaxSize: 128,
			DefaultSize: 28, DefaultChannels: 1,
			Build: func(scope *model.Scope, x *Node, numClasses int) *Node {
				return smallCNN(scope, x, numClasses, 32)
			},
		},
		{
			Name:        "resnet-small",
			Description: "ResNet-style: stem + 3 stages of 2 basic residual blocks (32-64-128); for small RGB images such as 64x64",
			MinSize:     16, MaxSize: 256,
			DefaultSize: 32, DefaultChannels: 3,
			Build: func(scope *model.Scope, x *Node, numClasses int) *Node {
				return resNet(scope, x, numClasses, []int{32, 64, 128}, []int{2, 2, 2}, false)
			},
		},
		{
			Name:        "resnet18",
			Description: "ResNet-18 (64-128-256-512, 2 blocks per stage, ImageNet stem); slow without a fast backend",
			MinSize:     32, MaxSize: 512,
			DefaultSize: 224, DefaultChannels: 3,
			Build: func(scope *model.Scope, x *Node, numClasses int) *Node {
				return resNet(scope, x, numClasses, []int{64, 128, 256, 512}, []int{2, 2, 2, 2}, true)
			},
		},
	}
}

// ArchitectureNames lists the known names, default first.
func ArchitectureNames() []string {
	var names []string
	for _, a := range Architectures() {
		names = append(names, a.Name)
	}
	return names
}

// LookupArchitecture returns the named architecture; "" means the default.
func LookupArchitecture(name string) (Architecture, error) {
	if name == "" {
		name = DefaultArchitecture
	}
	archs := Architectures()
	if i := slices.IndexFunc(archs, func(a Architecture) bool { return a.Name == name }); i >= 0 {
		return archs[i], nil
	}
	return Architecture{}, fmt.Errorf("unknown architecture %q (known: %s)", name, strings.Join(ArchitectureNames(), ", "))
}

// smallCNN is conv-pool blocks (widths doubling from width) until the
// feature map is at most 8x8, then a 128-unit hidden layer. Each block pools
// before its batch norm and ReLU: max-pooling commutes with ReLU, and doing
// the elementwise work on a quarter of the values is what the pure-Go
// backend's time goes to at these sizes.
func smallCNN(scope *model.Scope, x *Node, numClasses, width int) *Node {
	for block := 1; ; block++ {
		bs := scope.In("block%d", block)
		x = maxPool2(conv3x3(bs.In("conv"), x, width, 1))
		x = activation.Relu(batchNorm(bs.In("bn"), x))
		dims := x.Shape().Dimensions
		if dims[1] <= 8 && dims[2] <= 8 {
			break
		}
		width *= 2
	}
	dims := x.Shape().Dimensions
	x = Reshape(x, dims[0], dims[1]*dims[2]*dims[3])
	x = activation.Relu(layers.DenseWithBias(scope.In("hidden"), x, 128))
	return layers.DenseWithBias(scope.In("head"), x, numClasses)
}

// resNet builds a ResNet with basic blocks. imagenetStem selects the
// original 7x7-ish stride-2 stem + max-pool (approximated with a stride-2
// 3x3 conv and a pool) for large inputs; otherwise a single 3x3 conv.
func resNet(scope *model.Scope, x *Node, numClasses int, widths, blocks []int, imagenetStem bool) *Node {
	if imagenetStem {
		x = maxPool2(convBNReLU(scope.In("stem"), x, widths[0], 2))
	} else {
		x = convBNReLU(scope.In("stem"), x, widths[0], 1)
	}
	for stage, width := range widths {
		for b := range blocks[stage] {
			stride := 1
			if b == 0 && stage > 0 {
				stride = 2
			}
			x = basicBlock(scope.In("stage%d_block%d", stage+1, b+1), x, width, stride)
		}
	}
	x = globalAvgPool(x)
	return layers.DenseWithBias(scope.In("head"), x, numClasses)
}

func basicBlock(scope *model.Scope, x *Node, width, stride int) *Node {
	shortcut := x
	if stride != 1 || x.Shape().Dimensions[3] != width {
		shortcut = batchNorm(scope.In("shortcut_bn"), conv1x1(scope.In("shortcut"), x, width, stride))
	}
	y := convBNReLU(scope.In("a"), x, width, stride)
	y = batchNorm(scope.In("b_bn"), conv3x3(scope.In("b"), y, width, 1))
	return activation.Relu(Add(y, shortcut))
}
