"""PyTorch's side of scripts/bench-train.sh finetune: writes torchvision's
ResNet-18 (random weights, 5 classes, batch-norm statistics as
initialised) as ONNX at 224x224 with a dynamic batch, the file Shoal's
benchmark fine-tunes, then fine-tunes the same network in PyTorch on the
CPU the three ways Shoal does, and prints training images/s for each:

  full        every layer trains
  last-stage  layer4 and fc train; the rest runs under no_grad every step
  head-only   only fc trains; the backbone runs under no_grad every step

Batch norms stay in eval mode (frozen statistics), as in Shoal's imported
graphs. The first step is not counted.

    bench-train-torch.py OUT.onnx [BATCH [STEPS]]
"""

import os
import sys
import time


def main(argv):
    import torch
    import torchvision

    out = argv[1]
    batch = int(argv[2]) if len(argv) > 2 else 16
    steps = int(argv[3]) if len(argv) > 3 else 4
    # All the machine's cores, as ONNX Runtime and GoMLX use them.
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5)
    model.eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(model, x, out, opset_version=13, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; wrote {out}")

    def prefix(upto):
        layers = [model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4]
        return torch.nn.Sequential(*layers[:upto])

    modes = {
        # name: (frozen part, trained part)
        "full": (None, model),
        "last-stage": (prefix(7), torch.nn.Sequential(model.layer4, model.avgpool, torch.nn.Flatten(1), model.fc)),
        "head-only": (torch.nn.Sequential(prefix(8), model.avgpool, torch.nn.Flatten(1)), model.fc),
    }
    loss_fn = torch.nn.CrossEntropyLoss()
    for name, (frozen, trained) in modes.items():
        opt = torch.optim.Adam(trained.parameters(), lr=1e-3)
        start = None
        for step in range(steps):
            if step == 1:
                start = time.perf_counter()
            images = torch.rand(batch, 3, 224, 224)
            labels = torch.randint(0, 5, (batch,))
            if frozen is not None:
                with torch.no_grad():
                    images = frozen(images)
            opt.zero_grad()
            loss = loss_fn(trained(images), labels)
            loss.backward()
            opt.step()
        ips = batch * (steps - 1) / (time.perf_counter() - start)
        print(f"pytorch {name}: {ips:.2f} training images/s (batch {batch}, {steps - 1} steps after the first)")


if __name__ == "__main__":
    main(sys.argv)
