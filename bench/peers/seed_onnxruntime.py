"""The seed model's inference in ONNX Runtime (inference only: ONNX Runtime
does not train this model): the small AlexNet built as an ONNX graph with
onnx.helper (NCHW, the layout ONNX uses; random He-initialised weights, which
do not change the work), run over the 10,000 test images in batches of 64
after 10 untimed batches, --threads intra-op threads. One JSON line last."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
import onnxruntime as ort  # noqa: E402

p = fashion_data.common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
args = p.parse_args()
rng = np.random.default_rng(args.seed)


def weight(name, shape, fan_in):
    return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)


inits = [weight("c1", (64, 1, 3, 3), 9), numpy_helper.from_array(np.zeros(64, np.float32), "b1"),
         weight("c2", (128, 64, 3, 3), 576), numpy_helper.from_array(np.zeros(128, np.float32), "b2"),
         weight("f1", (512, 6272), 6272), numpy_helper.from_array(np.zeros(512, np.float32), "g1"),
         weight("f2", (10, 512), 512), numpy_helper.from_array(np.zeros(10, np.float32), "g2")]
nodes = [
    helper.make_node("Conv", ["x", "c1", "b1"], ["y1"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["y1"], ["r1"]),
    helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Conv", ["p1", "c2", "b2"], ["y2"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["y2"], ["r2"]),
    helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Flatten", ["p2"], ["f"], axis=1),
    helper.make_node("Gemm", ["f", "f1", "g1"], ["h"], transB=1),
    helper.make_node("Relu", ["h"], ["hr"]),
    helper.make_node("Gemm", ["hr", "f2", "g2"], ["logits"], transB=1),
]
graph = helper.make_graph(nodes, "fashion_alexnet",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(model)
so = ort.SessionOptions()
so.intra_op_num_threads = args.threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

test_x, test_y = fashion_data.load(args.data, "test")
test_x = test_x[:, None]
for i, (x, _) in enumerate(fashion_data.batches(test_x, test_y, args.batch_size, False, 0)):
    if i >= 10:
        break
    sess.run(["logits"], {"x": x})


def inference_pass():
    for x, y in fashion_data.batches(test_x, test_y, args.batch_size, False, 0):
        sess.run(["logits"], {"x": x})[0].argmax(1)
    return len(test_x)


infer_s, infer_images, infer_times = fashion_data.timed_passes(inference_pass, args.infer_repeats)
print(json.dumps(fashion_data.result("onnxruntime", "onnxruntime " + ort.__version__ + " / onnx " + onnx.__version__,
                                     args, None, 0, infer_s, infer_images, infer_pass_seconds=infer_times)))
