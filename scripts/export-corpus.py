"""Exports image classifiers to ONNX with torch.onnx.export, as users of
PyTorch do, for the tests of Shoal's ONNX import (run by export-corpus.sh).

    export-corpus.py list               the corpus's names, one a line
    export-corpus.py export DIR NAME... writes DIR/NAME.onnx and DIR/NAME.json

A name is NET-opsetN-BATCH-OUTPUT[-VARIANT]:

  BATCH    "dyn": a symbolic batch axis, the tensors named "input" and
           "output"; "fixed": a batch of 1 and the names torch picks.
  OUTPUT   "logits", or "softmax" (a Softmax appended to the network).
  VARIANT  "init": torchvision's initial weights untouched (every batch norm
           an identity); "bn": exported with training=PRESERVE, which keeps
           BatchNormalization nodes instead of folding them into the
           convolutions; "96px": 96x96 inputs instead of 32x32.

The weights are random, from torchvision's initialisation (seeded), made
into a network that trains the way a pretrained one does: the last batch
norm of every residual branch starts at zero (torchvision's
zero_init_residual, for every family), and the batch-norm statistics are
estimated on random images. With the initial statistics every batch norm is
an identity, and deep random networks then squash or blow up any input:
their loss barely moves in a few steps, which would say nothing about the
gradients. Each NAME.json holds what the Registry's input spec needs: size,
input and output names, ImageNet's mean and std, whether the output is
probabilities; and the torch and torchvision versions.
"""

import json
import os
import sys

# name: torchvision constructor (None: defined in tutorial_cnn)
NETS = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "mobilenetv2": "mobilenet_v2",
    "mobilenetv3small": "mobilenet_v3_small",
    "efficientnetb0": "efficientnet_b0",
    "squeezenet": "squeezenet1_1",
    # Beyond the usual ones: other operators and patterns.
    "shufflenetv2": "shufflenet_v2_x0_5",  # Shape/Gather/Concat chains, Slice, Transpose
    "regnety400mf": "regnet_y_400mf",  # grouped convolutions, squeeze-excitation
    "densenet121": "densenet121",  # BatchNormalization after Concat, AveragePool
    "convnexttiny": "convnext_tiny",  # layer norms, GELU (Erf), MatMul on channels-last
    "tutorialcnn": None,  # a hand-written network: F.pad, x.view(x.size(0), -1), Dropout
    "leakycnn": None,  # the same with LeakyReLU
}
CORE = ("resnet18", "resnet34", "resnet50", "mobilenetv2", "mobilenetv3small", "efficientnetb0", "squeezenet")
EXTRA = ("shufflenetv2", "regnety400mf", "densenet121", "convnexttiny", "tutorialcnn")
OPSETS = (11, 13, 17)
VARIANTS = ("init", "bn", "96px")
SIZE = 32
CLASSES = 5
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

def all_names():
    names = []
    for net in CORE:
        for opset in OPSETS:
            for batch in ("dyn", "fixed"):
                for out in ("logits", "softmax"):
                    names.append(f"{net}-opset{opset}-{batch}-{out}")
    for net in EXTRA:
        for opset in OPSETS:
            names += [f"{net}-opset{opset}-dyn-logits", f"{net}-opset{opset}-fixed-softmax"]
    names.append("leakycnn-opset13-dyn-logits")
    for net in ("resnet18", "mobilenetv2"):
        names += [f"{net}-opset13-dyn-logits-{v}" for v in VARIANTS]
    return names


def parse(name):
    parts = name.split("-")
    if len(parts) not in (4, 5) or parts[0] not in NETS or not parts[1].startswith("opset"):
        raise SystemExit(f"export-corpus: {name!r} is not NET-opsetN-dyn|fixed-logits|softmax[-VARIANT]")
    opset = int(parts[1][len("opset"):])
    if opset not in OPSETS or parts[2] not in ("dyn", "fixed") or parts[3] not in ("logits", "softmax"):
        raise SystemExit(f"export-corpus: {name!r}: unknown opset, batch or output")
    variant = parts[4] if len(parts) == 5 else ""
    if variant and variant not in VARIANTS:
        raise SystemExit(f"export-corpus: {name!r}: unknown variant {variant!r}")
    return parts[0], opset, parts[2] == "dyn", parts[3] == "softmax", variant


def tutorial_cnn(classes, leaky):
    """A network as a tutorial writes it, with the operators such code
    brings into an export: an explicit F.pad, and a flatten by
    x.view(x.size(0), -1), which torch writes as Shape, Gather, Unsqueeze,
    Concat and Reshape."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16)
            self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.act = nn.LeakyReLU(0.1) if leaky else nn.ReLU()
            self.fc1, self.drop, self.fc2 = nn.Linear(32 * 8 * 8, 64), nn.Dropout(0.5), nn.Linear(64, classes)

        def forward(self, x):
            x = F.pad(x, (1, 1, 1, 1))
            x = F.max_pool2d(self.act(self.bn1(self.conv1(x))), 2)
            x = F.max_pool2d(self.act(self.bn2(self.conv2(x))), 2)
            x = x.view(x.size(0), -1)
            return self.fc2(self.drop(self.act(self.fc1(x))))

    return Net()


def random_images(torch, n, size):
    """Images of random blocks and smooth blobs of colour over noise: varied
    enough that statistics estimated on them hold for other images."""
    import torch.nn.functional as F

    out = []
    for _ in range(n):
        img = torch.zeros(3, size, size)
        for _ in range(3):
            h, w = (int(v) for v in torch.randint(1, 9, (2,)))
            if torch.rand(1) < 0.5:
                layer = F.interpolate(torch.rand(1, 3, h, w), size=(size, size), mode="nearest")
            else:
                layer = F.interpolate(torch.rand(1, 3, h, w), size=(size, size), mode="bilinear", align_corners=False)
            img += torch.rand(1) * layer[0]
        img += 0.3 * torch.rand(1) * torch.rand(3, size, size)
        out.append(img / img.max())
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (torch.stack(out) - mean) / std


def zero_residual_branches(model):
    """Zeroes the scale of the last batch norm of every residual branch."""
    import torch
    from torchvision.models import resnet, mobilenetv2, mobilenetv3, efficientnet, regnet

    for m in model.modules():
        bn = None
        if isinstance(m, resnet.BasicBlock):
            bn = m.bn2
        elif isinstance(m, resnet.Bottleneck):
            bn = m.bn3
        elif isinstance(m, mobilenetv2.InvertedResidual) and m.use_res_connect:
            bn = m.conv[-1]
        elif isinstance(m, (mobilenetv3.InvertedResidual, efficientnet.MBConv)) and m.use_res_connect:
            bn = m.block[-1][1]
        elif isinstance(m, regnet.ResBottleneckBlock):
            bn = m.f.c[1]
        if bn is not None:
            assert isinstance(bn, torch.nn.BatchNorm2d), type(bn)
            torch.nn.init.zeros_(bn.weight)


def estimate_bn_statistics(torch, model, size):
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the batches
        bn.train()
    with torch.no_grad():
        for _ in range(16):
            model(random_images(torch, 16, size))
    model.eval()


def export(out_dir, name):
    import torch
    import torchvision

    net, opset, dynamic, softmax, variant = parse(name)
    size = 96 if variant == "96px" else SIZE
    torch.manual_seed(0)
    if NETS[net] is None:
        model = tutorial_cnn(CLASSES, leaky=net == "leakycnn")
    else:
        model = getattr(torchvision.models, NETS[net])(weights=None, num_classes=CLASSES)
    if variant != "init":
        zero_residual_branches(model)
        estimate_bn_statistics(torch, model, size)
    if softmax:
        model = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    model.eval()
    x = random_images(torch, 1, size)
    kwargs = {}
    if dynamic:
        kwargs = {
            "input_names": ["input"],
            "output_names": ["output"],
            "dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}},
        }
    if variant == "bn":
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    path = os.path.join(out_dir, name + ".onnx")
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, opset_version=opset, **kwargs)
    inputs, outputs = graph_io(tmp)
    meta = {
        "name": name, "net": net, "opset": opset, "dynamicBatch": dynamic, "softmax": softmax, "variant": variant,
        "size": size, "channels": 3, "classes": CLASSES, "input": inputs[0], "output": outputs[0],
        "mean": MEAN, "std": STD, "torch": torch.__version__, "torchvision": torchvision.__version__,
    }
    with open(os.path.join(out_dir, name + ".json.tmp"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    os.replace(os.path.join(out_dir, name + ".json.tmp"), os.path.join(out_dir, name + ".json"))


def graph_io(path):
    """The graph's input and output names. The onnx package is not a
    dependency of torch.onnx.export, so the file is read with a few lines
    of protobuf decoding."""
    with open(path, "rb") as f:
        data = f.read()
    graph = fields(data, 7)[0]  # ModelProto.graph
    inits = {fields(t, 8)[0].decode() for t in fields(graph, 5)}  # initializer names
    inputs = [fields(v, 1)[0].decode() for v in fields(graph, 11)]  # ValueInfoProto.name
    outputs = [fields(v, 1)[0].decode() for v in fields(graph, 12)]
    inputs = [i for i in inputs if i not in inits]
    if len(inputs) != 1 or len(outputs) != 1:
        raise SystemExit(f"export-corpus: {path}: inputs {inputs}, outputs {outputs}; want one of each")
    return inputs, outputs


def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(data, number):
    """The length-delimited fields numbered number of a protobuf message."""
    out, i = [], 0
    while i < len(data):
        key, i = varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = varint(data, i)
            if num == number:
                out.append(data[i:i + n])
            i += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def main(argv):
    if len(argv) == 2 and argv[1] == "list":
        print("\n".join(all_names()))
        return
    if len(argv) >= 3 and argv[1] == "export":
        known = set(all_names())
        for name in argv[3:]:
            if name not in known:
                raise SystemExit(f"export-corpus: {name!r} is not in the corpus (export-corpus.py list)")
        import warnings

        warnings.filterwarnings("ignore")  # torch.onnx's advice on constant folding and dynamic axes
        for name in argv[3:]:
            export(argv[2], name)
        return
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
