"""Fashion-MNIST from Debian's files as numpy arrays, for the peers of
bench/cpu_peers.sh that do not use torchvision (TensorFlow, JAX, ONNX Runtime).
Images as float32 in [0, 1] (what torchvision's ToTensor gives), labels int32."""
import gzip
import os

import numpy as np


def _read(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(root=None, split="train"):
    root = root or os.environ.get("LUNET_DATA_FASHION", "/usr/share/datasets/fashion-mnist")
    prefix = "train" if split == "train" else "t10k"
    images = _read(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28)
    labels = _read(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), 8).astype(np.int32)
    return images.astype(np.float32) / 255.0, labels


def batches(images, labels, batch_size, shuffle, seed):
    """The notebook's DataLoader order: shuffled each epoch (train) or in order (test)."""
    order = np.random.default_rng(seed).permutation(len(images)) if shuffle else np.arange(len(images))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield images[idx], labels[idx]


def timed_passes(one_pass, repeats):
    """Runs one_pass() (a whole pass over the test set, returning its image
    count) `repeats` times after the caller's warm-up; returns (the median
    pass's seconds, its images, every pass's seconds): the rule lunet's session
    follows with --repeat, so that one slow pass does not decide a ratio."""
    import statistics
    import time
    times, images = [], 0
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        images = one_pass()
        times.append(time.perf_counter() - start)
    return statistics.median(times), images, times


def result(peer, version, args, train_s, train_images, infer_s, infer_images, **extra):
    """The one JSON line every peer prints last (the fields seed_pytorch.py prints)."""
    out = {"peer": peer, "version": version, "threads": args.threads, "batch_size": args.batch_size,
           "max_batches": args.max_batches, "warmup_batches": args.warmup_batches,
           "train_seconds": train_s, "train_images": train_images,
           "train_images_per_s": train_images / train_s if train_s else None,
           "infer_seconds": infer_s, "infer_images": infer_images,
           "infer_images_per_s": infer_images / infer_s}
    out.update(extra)
    return out


def common_args(parser):
    parser.add_argument("--data", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-batches", type=int, default=200, help="timed training steps")
    parser.add_argument("--warmup-batches", type=int, default=10, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--infer-repeats", type=int, default=3,
                        help="timed inference passes over the test set (the median is reported)")
    return parser
