"""The seed workload in TensorFlow-CPU / Keras 3 (oneDNN): the small AlexNet on
Fashion-MNIST (NHWC, TensorFlow's CPU layout), Adam lr 1e-3, batch 64; a
tf.function training step (graph mode, what a user writing a custom loop
gets) timed over --max-batches steps after --warmup-batches, then inference
over the 10,000 test images (after 10 untimed batches). One JSON line last."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data  # noqa: E402

p = fashion_data.common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
args = p.parse_args()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.random.set_seed(args.seed)

model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(2),
    keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(2),
    keras.layers.Flatten(),
    keras.layers.Dense(512, activation="relu"),
    keras.layers.Dense(10),
])
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = keras.optimizers.Adam(1e-3)


@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


@tf.function
def predict(x):
    return tf.argmax(model(x, training=False), axis=1, output_type=tf.int32)


train_x, train_y = fashion_data.load(args.data, "train")
test_x, test_y = fashion_data.load(args.data, "test")
steps = 0
batches = fashion_data.batches(train_x[..., None], train_y, args.batch_size, True, args.seed)
for x, y in batches:  # warm-up (traces the graph)
    if steps >= args.warmup_batches:
        break
    train_step(tf.constant(x), tf.constant(y)).numpy()
    steps += 1
images = 0
start = time.perf_counter()
for i, (x, y) in enumerate(fashion_data.batches(train_x[..., None], train_y, args.batch_size, True,
                                                args.seed + 1)):
    if i >= args.max_batches:
        break
    loss = train_step(tf.constant(x), tf.constant(y))
    images += len(x)
loss.numpy()
train_s = time.perf_counter() - start
for i, (x, _) in enumerate(fashion_data.batches(test_x[..., None], test_y, args.batch_size, False, 0)):
    if i >= 10:
        break
    predict(tf.constant(x)).numpy()


def inference_pass():
    correct = 0
    for x, y in fashion_data.batches(test_x[..., None], test_y, args.batch_size, False, 0):
        correct += int((predict(tf.constant(x)).numpy() == y).sum())
    return len(test_x)


infer_s, infer_images, infer_times = fashion_data.timed_passes(inference_pass, args.infer_repeats)
print(json.dumps(fashion_data.result("tensorflow", tf.__version__ + " / keras " + keras.__version__, args,
                                     train_s, images, infer_s, infer_images, infer_pass_seconds=infer_times)))
