"""The seed workload in JAX + optax (XLA on the CPU): the small AlexNet on
Fashion-MNIST (NHWC), Adam lr 1e-3, batch 64, a jit-compiled training step
timed over --max-batches steps after --warmup-batches, then jit inference over
the 10,000 test images (after 10 untimed batches). One JSON line last."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data  # noqa: E402

p = fashion_data.common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
args = p.parse_args()
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=true"
                           f" intra_op_parallelism_threads={args.threads}")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

key = jax.random.PRNGKey(args.seed)
k = jax.random.split(key, 4)


def he(rng, shape, fan_in):
    return jax.random.normal(rng, shape, jnp.float32) * jnp.sqrt(2.0 / fan_in)


params = {
    "c1": he(k[0], (3, 3, 1, 64), 9), "b1": jnp.zeros(64),
    "c2": he(k[1], (3, 3, 64, 128), 576), "b2": jnp.zeros(128),
    "f1": he(k[2], (6272, 512), 6272), "g1": jnp.zeros(512),
    "f2": he(k[3], (512, 10), 512), "g2": jnp.zeros(10),
}
dn = ("NHWC", "HWIO", "NHWC")


def forward(p, x):
    def block(x, w, b):
        x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn) + b
        x = jax.nn.relu(x)
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    x = block(x, p["c1"], p["b1"])
    x = block(x, p["c2"], p["b2"])
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(x @ p["f1"] + p["g1"])
    return x @ p["f2"] + p["g2"]


opt = optax.adam(1e-3)
state = opt.init(params)


@jax.jit
def train_step(p, s, x, y):
    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, x), y).mean()
    value, grads = jax.value_and_grad(loss)(p)
    updates, s = opt.update(grads, s, p)
    return optax.apply_updates(p, updates), s, value


predict = jax.jit(lambda p, x: jnp.argmax(forward(p, x), axis=1))

train_x, train_y = fashion_data.load(args.data, "train")
test_x, test_y = fashion_data.load(args.data, "test")
for i, (x, y) in enumerate(fashion_data.batches(train_x[..., None], train_y, args.batch_size, True, args.seed)):
    if i >= args.warmup_batches:
        break
    params, state, loss = train_step(params, state, x, y)
loss.block_until_ready()
images = 0
start = time.perf_counter()
for i, (x, y) in enumerate(fashion_data.batches(train_x[..., None], train_y, args.batch_size, True,
                                                args.seed + 1)):
    if i >= args.max_batches:
        break
    params, state, loss = train_step(params, state, x, y)
    images += len(x)
loss.block_until_ready()
train_s = time.perf_counter() - start
for i, (x, _) in enumerate(fashion_data.batches(test_x[..., None], test_y, args.batch_size, False, 0)):
    if i >= 10:
        break
    predict(params, x).block_until_ready()


def inference_pass():
    correct = 0
    for x, y in fashion_data.batches(test_x[..., None], test_y, args.batch_size, False, 0):
        correct += int((jax.device_get(predict(params, x)) == y).sum())
    return len(test_x)


infer_s, infer_images, infer_times = fashion_data.timed_passes(inference_pass, args.infer_repeats)
print(json.dumps(fashion_data.result("jax", "jax " + jax.__version__ + " / optax " + optax.__version__, args,
                                     train_s, images, infer_s, infer_images, infer_pass_seconds=infer_times)))
