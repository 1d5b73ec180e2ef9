"""The rclpy node `segment_node`: a thin shell around `SegmentationCore`.

Follows the lifecycle shape of the best perception nodes: parameters are declared in
`__init__`, read and turned into publishers in `configure()`, and the model is loaded and
the subscription opened in `activate()`. The subscription keeps only the newest image
(QoS depth 1), so a slow model never builds up lag; each output is produced only while it
has subscribers; outputs carry the input header unchanged.
"""

from __future__ import annotations

import os
import sys

from dwrseg_rt.errors import UserError
from dwrseg_rt.ros.core import (DEFAULT_INPUT, DEFAULT_NODE, OUTPUTS, NodeStats, RateLimited, SegmentationCore, input_topic,
                               listened)
from dwrseg_rt.ros.messages import UnsupportedImage

PARAMETERS = {
    "input_topic": DEFAULT_INPUT,  # remappable; "<topic>/compressed" is used when compressed is true
    "compressed": False,
    "weights": "",  # .pt or .onnx; empty: the shipped demo model
    "backend": "auto",  # auto | tensorrt | torch | onnxruntime
    "precision": "",  # fp32 | fp16 | int8; empty: fp16 on GPUs, fp32 on CPU
    "inference_size": "",  # "1024x512"; empty: the checkpoint's
    "alpha": 0.5,
    "engine_cache_dir": "",  # where TensorRT engines are cached; empty: ~/.cache/dwrseg-rt
    "force_rebuild": False,  # rebuild the TensorRT engine even if one is cached
    "build_only": False,  # build/export and cache the backend, then exit: for vehicle provisioning
    "reliability": "best_effort",  # or "reliable" (bag playback, some drivers)
    "log_period": 5.0,  # seconds between timing log lines
}


def import_rclpy():
    try:
        import rclpy
        from rclpy.node import Node
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import Float32
    except ImportError:
        raise UserError("rclpy and sensor_msgs are not importable: source your ROS 2 setup "
                        "(e.g. source /opt/ros/humble/setup.bash) in the shell that runs the node") from None
    return rclpy, Node, Image, CompressedImage, Float32


def qos_profile(reliability: str):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    policies = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
    if reliability not in policies:
        raise UserError(f"parameter reliability must be best_effort or reliable, not {reliability!r}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=policies[reliability], durability=DurabilityPolicy.VOLATILE)


def make_node_class():
    rclpy, Node, Image, CompressedImage, Float32 = import_rclpy()

    class SegmentNode(Node):
        def __init__(self) -> None:
            super().__init__(DEFAULT_NODE)
            for name, default in PARAMETERS.items():
                self.declare_parameter(name, default)
            self.stats = NodeStats()
            self.warn = RateLimited(self.get_logger().warning)

        def param(self, name: str):
            return self.get_parameter(name).value

        def configure(self) -> None:
            self.qos = qos_profile(self.param("reliability"))
            self.outputs = {name: self.create_publisher(Image, f"~/{name}", self.qos) for name in OUTPUTS}
            self.timing = {name: self.create_publisher(Float32, f"~/{name}", 10) for name in ("processing_ms", "latency_ms")}
            self.create_timer(float(self.param("log_period")), lambda: self.get_logger().info(self.stats.summary_and_reset()))

        def activate(self) -> None:
            from dwrseg_rt.checkpoint import resolve_weights
            from dwrseg_rt.cli import parse_size
            from dwrseg_rt.jobs.segment import load_segmenter
            from dwrseg_rt.export.tensorrt import EngineOptions

            if self.param("engine_cache_dir"):
                os.environ["DWRSEG_RT_CACHE"] = self.param("engine_cache_dir")  # read by the engine cache
            weights = resolve_weights(self.param("weights") or None)
            segmenter = load_segmenter(weights, self.param("backend"), parse_size(self.param("inference_size") or None),
                                       self.param("precision") or None, EngineOptions(force_rebuild=self.param("force_rebuild")))
            self.core = SegmentationCore(segmenter, Image, "array.array", float(self.param("alpha")))
            self.get_logger().info(f"{weights.name} on {segmenter.backend.name} at {segmenter.size[0]}x{segmenter.size[1]}")
            topic = input_topic(self.param("input_topic"), self.param("compressed"))
            kind = CompressedImage if self.param("compressed") else Image
            self.subscription = self.create_subscription(kind, topic, self.on_image, self.qos)
            self.get_logger().info(f"segmenting {topic} -> {', '.join(p.topic_name for p in self.outputs.values())}")

        def on_image(self, msg) -> None:
            wanted = listened({name: pub.get_subscription_count() for name, pub in self.outputs.items()},
                              (pub.get_subscription_count() for pub in self.timing.values()))
            if wanted is None:
                return  # nobody listens: do no work
            try:
                results, report = self.core.process(msg, wanted)
            except UnsupportedImage as exc:
                self.stats.errors += 1
                self.warn("input", str(exc))
                return
            for name, out in results.items():
                self.outputs[name].publish(out)
            self.stats.add(report)
            self.timing["processing_ms"].publish(Float32(data=report.processing_ms))
            self.timing["latency_ms"].publish(Float32(data=report.latency_ms))

    return rclpy, SegmentNode


def main(args: list[str] | None = None) -> None:
    """Entry point of `ros2 run dwrseg_rt segment_node` and the launch file."""
    try:
        rclpy, SegmentNode = make_node_class()
        rclpy.init(args=args)
        node = SegmentNode()
        try:
            node.configure()
            node.activate()
            if node.param("build_only"):
                node.get_logger().info("build_only: backend prepared and cached; exiting")
                return
            rclpy.spin(node)
        except KeyboardInterrupt:
            pass
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
