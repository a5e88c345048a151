"""PyTorch's side of scripts/bench-train.sh accuracy-parity.

    bench-train-parity.py prepare DIR   generate both datasets, pretrain, export
    bench-train-parity.py finetune DIR SEED EPOCHS BATCH LR [MODES...]
                                        fine-tune the export on dataset B

prepare writes into DIR:
  a_{train,test}.f32/.i32  dataset A (pretraining): 6 classes told apart by
                           the fish's hue and body shape
  b_{train,test}.f32/.i32  dataset B (fine-tuning): 5 other classes, told
                           apart by the pattern on the body (plain, vertical
                           bars, spots, two-tone, a lengthwise stripe) and
                           a slenderness whose ranges overlap A's; hue is
                           random, so A's hue features are no shortcut
  meta.json                sizes, classes, preprocessing
  base.onnx                ResNet-18 pretrained on A, exported as
                           torch.onnx.export does for users: eval mode,
                           opset 13, dynamic batch, input "input", output
                           "output" (logits)
  base-bn.onnx             the same, exported keeping its batch norms as
                           BatchNormalization nodes (training=PRESERVE)
                           instead of folding them into the convolutions:
                           what Shoal trains then has PyTorch's parameters
  base.pt                  the same weights as a state dict

Images are float32 NCHW in [0, 1], written once and read as they are by
both sides (no decode or resize on either); both normalise them with the
ImageNet mean and std in float32, PyTorch in front of the model, Shoal in
front of the imported graph. Labels are int32.

finetune trains from base.pt (the weights of base.onnx) the two ways
Shoal's internal/ml does, with its recipe: a new classification layer
(Glorot-uniform weights, zero bias), Adam (betas 0.9/0.999, eps 1e-8, no
weight decay), constant rate, no augmentation, batch norms in eval mode
(frozen statistics; their scale and shift train where the layer trains),
each epoch a fresh shuffle and the last partial batch dropped; the frozen
part runs once per image (as Shoal caches it):

  head-only   fc trains on the backbone's pooled features
  last-stage  layer4 and fc train on layer3's outputs

and, to tell where a difference comes from, two variants of them:

  head-only-standardised  the features standardised per feature with the
                          training features' mean and deviation first, as
                          Shoal's head-only training does
  last-stage-fused        layer4's batch norms folded into its
                          convolutions first (torch.onnx.export's eval-mode
                          export folds them, so Shoal trains the folded
                          weights and biases)

and every layer ("full"; "full-fused" with every batch norm folded first),
which only runs when asked for.

MODES (default: the first four) chooses among them.

It prints one line per mode and epoch: "pytorch MODE epoch E test-acc A".
"""

import json
import os
import sys
import time

import numpy as np

SIZE = 64
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
A_CLASSES, B_CLASSES = 6, 5
A_TRAIN, A_TEST = 1200, 300
B_TRAIN, B_TEST = 320, 500


def hsv(h, s, v):
    h = (h % 1.0) * 6
    i, f = int(h), h - int(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i % 6])


def fish(rng, hue, aspect, pattern):
    """One 3xSIZExSIZE image in [0, 1]: a textured two-colour gradient
    background with sensor noise and a shaded fish (ellipse body and tail)
    of the given hue and aspect, with a pattern drawn on the body."""
    w = h = SIZE
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    bg0 = np.array([rng.uniform(0, 120), rng.uniform(60, 180), rng.uniform(80, 230)]) / 255
    bg1 = rng.uniform(0, 200, 3) / 255
    t = ((x + y) / (w + h))[None]
    noise = (rng.integers(0, 32, (h, w)) - 16) / 255
    img = bg0[:, None, None] * (1 - t) + bg1[:, None, None] * t + noise[None]
    cx, cy = w * rng.uniform(0.3, 0.6), h * rng.uniform(0.3, 0.7)
    rx = w * rng.uniform(0.18, 0.3)
    ry = rx * aspect
    dx, dy = (x - cx) / rx, (y - cy) / ry
    tail = (x > cx + rx * 0.8) & (x < cx + rx * 1.35) & (np.abs(y - cy) < (x - cx - rx * 0.8) * 0.9)
    body = dx * dx + dy * dy < 1
    colour = hsv(hue, rng.uniform(0.5, 0.9), rng.uniform(0.45, 0.95))
    other = hsv(hue + 0.5, rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.9))
    mark = np.zeros_like(body)
    if pattern == "bars":
        period = rx * rng.uniform(0.35, 0.5)
        mark = np.mod(x - cx, period) < period * 0.45
    elif pattern == "spots":
        period = rx * rng.uniform(0.35, 0.5)
        mark = (np.mod(x - cx, period) - period / 2) ** 2 + (np.mod(y - cy, period) - period / 2) ** 2 < (period * 0.28) ** 2
    elif pattern == "two-tone":
        mark = y > cy
    elif pattern == "stripe":
        mark = np.abs(y - cy) < ry * 0.25
    shade = 0.7 + 0.3 * (1 - dy) / 2
    for k in range(3):
        c = np.where(mark, other[k], colour[k]) * shade + noise / 2
        img[k] = np.where(body | tail, c, img[k])
    return np.clip(img, 0, 1).astype(np.float32)


def dataset(seed, n, classes, kind):
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, SIZE, SIZE), np.float32)
    labels = np.empty(n, np.int32)
    patterns = ["plain", "bars", "spots", "two-tone", "stripe"]
    for i in range(n):
        c = i % classes
        if kind == "a":
            # Class = hue and slenderness, plain bodies.
            hue = c / classes + rng.uniform(-0.04, 0.04)
            images[i] = fish(rng, hue, 0.25 + 0.1 * c, "plain")
        else:
            # Class = pattern and a slenderness that overlaps A's; hue
            # carries no information.
            images[i] = fish(rng, rng.uniform(0, 1), 0.3 + 0.1 * c + rng.uniform(-0.06, 0.06), patterns[c])
        labels[i] = c
    return images, labels


def write(d, name, images, labels):
    images.tofile(os.path.join(d, name + ".f32"))
    labels.tofile(os.path.join(d, name + ".i32"))


def read(d, name):
    images = np.fromfile(os.path.join(d, name + ".f32"), np.float32).reshape(-1, 3, SIZE, SIZE)
    labels = np.fromfile(os.path.join(d, name + ".i32"), np.int32)
    return images, labels


def normalise(torch, images):
    x = torch.from_numpy(images)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def accuracy(torch, model, x, y, batch=100):
    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            right += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return right / len(y)


def prepare(d):
    import torch
    import torchvision

    torch.set_num_threads(2)
    start = time.time()
    # Different seeds for every split: no image repeats.
    sets = {"a_train": dataset(1, A_TRAIN, A_CLASSES, "a"), "a_test": dataset(2, A_TEST, A_CLASSES, "a"),
            "b_train": dataset(3, B_TRAIN, B_CLASSES, "b"), "b_test": dataset(4, B_TEST, B_CLASSES, "b")}
    for name, (images, labels) in sets.items():
        write(d, name, images, labels)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"size": SIZE, "mean": MEAN, "std": STD, "a_classes": A_CLASSES, "b_classes": B_CLASSES,
                   "b_train": B_TRAIN, "b_test": B_TEST}, f)
    print(f"generated A ({A_CLASSES} classes, {A_TRAIN} train, {A_TEST} test) and B ({B_CLASSES} classes, "
          f"{B_TRAIN} train, {B_TEST} test) at {SIZE}x{SIZE} in {time.time() - start:.1f} s")

    # Pretraining on A: every layer, batch norms in training mode.
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=A_CLASSES)
    x, y = normalise(torch, sets["a_train"][0]), torch.from_numpy(sets["a_train"][1]).long()
    tx, ty = normalise(torch, sets["a_test"][0]), torch.from_numpy(sets["a_test"][1]).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    for epoch in range(1, 4):
        model.train()
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y) - 31, 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        print(f"pretraining on A, epoch {epoch}: test accuracy {accuracy(torch, model, tx, ty) * 100:.1f}% "
              f"({time.time() - start:.0f} s)")
    model.eval()
    torch.save(model.state_dict(), os.path.join(d, "base.pt"))
    with torch.no_grad():
        torch.onnx.export(model, tx[:1], os.path.join(d, "base.onnx"), opset_version=13, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        torch.onnx.export(model, tx[:1], os.path.join(d, "base-bn.onnx"), opset_version=13, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE)
    print(f"torch {torch.__version__}: exported base.onnx and base-bn.onnx (opset 13, dynamic batch)")


def fold(torch, block):
    """block (a torchvision BasicBlock) with every batch norm folded into
    the convolution before it, as the ONNX export has it."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), torch.nn.Identity()
    block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), torch.nn.Identity()
    if block.downsample is not None:
        block.downsample = torch.nn.Sequential(fuse_conv_bn_eval(block.downsample[0], block.downsample[1]))
    return block


MODES = ["head-only", "head-only-standardised", "last-stage", "last-stage-fused"]
# Every layer trains (batch norms in eval mode); with "fused", every batch
# norm folded first, as the export Shoal trains has them. Not in the
# default run (SHOAL_PARITY_MODES adds "full").
FULL_MODES = ["full", "full-fused"]


def finetune(d, seed, epochs, batch, lr, modes):
    import torch
    import torchvision

    torch.set_num_threads(2)
    train_x, train_y = read(d, "b_train")
    test_x, test_y = read(d, "b_test")
    x, y = normalise(torch, train_x), torch.from_numpy(train_y).long()
    tx, ty = normalise(torch, test_x), torch.from_numpy(test_y).long()
    loss_fn = torch.nn.CrossEntropyLoss()
    for mode in modes or MODES:
        if mode not in MODES + FULL_MODES:
            sys.exit(f"unknown mode {mode}: want {', '.join(MODES + FULL_MODES)}")
        start = time.time()
        torch.manual_seed(seed)
        model = torchvision.models.resnet18(weights=None, num_classes=A_CLASSES)
        model.load_state_dict(torch.load(os.path.join(d, "base.pt")))
        model.fc = torch.nn.Linear(512, B_CLASSES)
        torch.nn.init.xavier_uniform_(model.fc.weight)
        torch.nn.init.zeros_(model.fc.bias)
        model.eval()  # batch norms frozen throughout
        stem = [model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3]
        if mode.startswith("full"):
            if mode == "full-fused":
                from torch.nn.utils.fusion import fuse_conv_bn_eval
                model.conv1, model.bn1 = fuse_conv_bn_eval(model.conv1, model.bn1), torch.nn.Identity()
                for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
                    for block in layer:
                        fold(torch, block)
            frozen = torch.nn.Sequential()
            trained = model
        elif mode.startswith("head-only"):
            frozen = torch.nn.Sequential(*stem, model.layer4, model.avgpool, torch.nn.Flatten(1))
            trained = model.fc
        else:
            if mode == "last-stage-fused":
                for block in model.layer4:
                    fold(torch, block)
            frozen = torch.nn.Sequential(*stem)
            trained = torch.nn.Sequential(model.layer4, model.avgpool, torch.nn.Flatten(1), model.fc)
        for p in frozen.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            fx = torch.cat([frozen(x[i:i + 100]) for i in range(0, len(y), 100)])
            ftx = torch.cat([frozen(tx[i:i + 100]) for i in range(0, len(ty), 100)])
        if mode == "head-only-standardised":
            mean, std = fx.mean(0), fx.std(0, unbiased=False)
            std = torch.where(std > 1e-3, std, torch.ones_like(std))  # as Shoal: a constant feature is only centred
            fx, ftx = (fx - mean) / std, (ftx - mean) / std
        opt = torch.optim.Adam(trained.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed)
        for epoch in range(1, epochs + 1):
            trained.eval()
            order = torch.randperm(len(y), generator=g)
            for i in range(0, len(y) - batch + 1, batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss_fn(trained(fx[idx]), y[idx]).backward()
                opt.step()
            print(f"pytorch {mode} epoch {epoch} test-acc {accuracy(torch, trained, ftx, ty):.4f} "
                  f"({time.time() - start:.0f} s)", flush=True)


def main(argv):
    if len(argv) >= 3 and argv[1] == "prepare":
        prepare(argv[2])
    elif len(argv) >= 7 and argv[1] == "finetune":
        finetune(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), float(argv[6]), argv[7:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
