#!/usr/bin/python3
"""The seed notebook's PyTorch code, as written: "GPU vs CPU in machine learning".

AlexNet-style CNN on Fashion-MNIST, torchvision's ToTensor and DataLoader
(batch 64, shuffled), Adam lr 1e-3, CrossEntropyLoss, two epochs, then the test
set. Used by bench/cpu_vs_pytorch.sh as the side-by-side peer of lunet's
session: same model, data, batch size and thread count.

Only what a benchmark needs was added around it: reading Debian's data offline,
--threads, --max-batches (a cap per epoch, for throughput runs), --warmup-batches
(untimed training steps before the timed run), --device, --infer-repeats (the
median of several timed test passes), --predecoded (batches from images decoded
once into an array, as the other peers get them, instead of torchvision's
per-image ToTensor) and one JSON line with the measurements at the end.
"""
import argparse
import contextlib
import gzip
import json
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torchvision import datasets, transforms


class AlexNet(nn.Module):
    def __init__(self, num_classes=10):
        super(AlexNet, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(128 * 7 * 7, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        x = self.classifier(x)
        return x


def debian_root(src):
    """torchvision wants <root>/FashionMNIST/raw/<files without .gz>."""
    root = os.path.join(tempfile.gettempdir(), "lunet-torch-fashion-mnist")
    raw = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        out = os.path.join(raw, name)
        if not os.path.exists(out):
            with gzip.open(os.path.join(src, name + ".gz"), "rb") as f, open(out + ".tmp", "wb") as g:
                shutil.copyfileobj(f, g)
            os.rename(out + ".tmp", out)
    return root


# --precision bf16: torch.autocast's bf16 mixed precision (a benchmark option,
# not the notebook's); fp32 leaves the code as written.
AUTOCAST = contextlib.nullcontext


def warm_up(model, device, trainloader, optimizer, criterion, batches):
    """Untimed training steps before the timed run (a benchmark option, not the notebook's)."""
    model.train()
    for step, (inputs, labels) in enumerate(trainloader):
        if step >= batches:
            break
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        with AUTOCAST():
            loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        loss.item()


def train(model, device, trainloader, optimizer, criterion, epochs, max_batches):
    model.train()
    images = 0
    start = time.time()
    for epoch in range(epochs):
        running_loss = 0.0
        batches = 0
        for inputs, labels in trainloader:
            if max_batches and batches >= max_batches:
                break
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            with AUTOCAST():
                outputs = model(inputs)
                loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            batches += 1
            images += inputs.size(0)
        print(f"Epoch {epoch + 1}, Loss: {running_loss / batches:.4f}", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.time() - start, images


class PredecodedBatches:
    """--predecoded: batches from the images decoded once into one array
    (bench/peers/fashion_data.py, as TensorFlow, JAX and ONNX Runtime get them
    and as lunet's loader holds them), not through torchvision's per-image
    ToTensor, so that the timed loops measure the framework, not PIL.
    Re-iterable like a DataLoader; shuffled in a new order each pass when
    `shuffle` is set."""

    def __init__(self, root, split, batch_size, shuffle, seed):
        import fashion_data
        self.batches_of = fashion_data.batches
        self.images, self.labels = fashion_data.load(root, split)
        self.labels = self.labels.astype(np.int64)
        self.batch_size, self.shuffle, self.seed, self.passes = batch_size, shuffle, seed, 0

    def __iter__(self):
        self.passes += 1
        for x, y in self.batches_of(self.images, self.labels, self.batch_size, self.shuffle,
                                    self.seed + self.passes):
            # unsqueeze, not numpy's [:, None]: numpy may give the length-1
            # channel axis any stride, and torch then reads it as channels-last
            yield torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def warm_up_inference(model, device, testloader, batches):
    """Untimed inference batches before the timed passes, as the other peers
    and lunet have (a benchmark option: with --infer-repeats above 1)."""
    model.eval()
    with torch.no_grad():
        for step, (inputs, _) in enumerate(testloader):
            if step >= batches:
                break
            with AUTOCAST():
                model(inputs.to(device))


def test(model, device, testloader):
    model.eval()
    correct = 0
    total = 0
    start = time.time()
    with torch.no_grad():
        for inputs, labels in testloader:
            inputs, labels = inputs.to(device), labels.to(device)
            with AUTOCAST():
                outputs = model(inputs)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 100.0 * correct / total, time.time() - start, total


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("LUNET_DATA_FASHION", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-batches", type=int, default=0, help="cap per epoch (0: all)")
    p.add_argument("--warmup-batches", type=int, default=0, help="untimed training steps first")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--infer-repeats", type=int, default=1,
                   help="timed passes over the test set, the median reported, after 10 untimed "
                        "batches when above 1 (the notebook: 1 pass, no warm-up)")
    p.add_argument("--predecoded", action="store_true",
                   help="batches from images decoded once into an array (as the other peers and lunet "
                        "get them), not torchvision's per-image ToTensor (the notebook's)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: torch.autocast(device, dtype=torch.bfloat16) around forward and loss")
    args = p.parse_args()
    if args.precision == "bf16":
        global AUTOCAST
        AUTOCAST = lambda: torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16)  # noqa: E731

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if args.predecoded:
        trainloader = PredecodedBatches(args.data, "train", args.batch_size, True, args.seed)
        testloader = PredecodedBatches(args.data, "test", args.batch_size, False, 0)
    else:
        transform = transforms.Compose([transforms.ToTensor()])
        root = debian_root(args.data)
        trainset = datasets.FashionMNIST(root=root, train=True, download=False, transform=transform)
        trainloader = torch.utils.data.DataLoader(trainset, batch_size=args.batch_size, shuffle=True)
        testset = datasets.FashionMNIST(root=root, train=False, download=False, transform=transform)
        testloader = torch.utils.data.DataLoader(testset, batch_size=args.batch_size, shuffle=False)

    model = AlexNet().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)

    if args.warmup_batches:
        warm_up(model, device, trainloader, optimizer, criterion, args.warmup_batches)
    train_s, train_images = train(model, device, trainloader, optimizer, criterion,
                                  args.epochs, args.max_batches)
    if args.infer_repeats > 1:
        warm_up_inference(model, device, testloader, 10)
    passes = [test(model, device, testloader) for _ in range(max(1, args.infer_repeats))]
    accuracy, test_images = passes[0][0], passes[0][2]
    test_s = statistics.median(p[1] for p in passes)
    print(f"Training time: {train_s:.2f} s, test accuracy {accuracy:.2f}%, "
          f"inference time {test_s:.2f} s", flush=True)
    print(json.dumps({
        "peer": "pytorch-seed", "torch": torch.__version__, "precision": args.precision, "device": args.device,
        "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "epochs": args.epochs, "max_batches": args.max_batches,
        "warmup_batches": args.warmup_batches,
        "train_seconds": train_s, "train_images": train_images,
        "train_images_per_s": train_images / train_s,
        "infer_seconds": test_s, "infer_images": test_images,
        "infer_images_per_s": test_images / test_s, "accuracy": accuracy,
        "infer_pass_seconds": [p[1] for p in passes], "predecoded": args.predecoded,
    }))


if __name__ == "__main__":
    main()
