"""The rclpy node `segment_node`: a thin shell around `SegmentationCore`.

Follows the lifecycle shape of the best perception nodes: parameters are declared in
`__init__`, read and turned into publishers in `configure()`, and the model is loaded and
the subscription opened in `activate()`. The subscription keeps only the newest image
(QoS depth 1), so a slow model never builds up lag; each output is produced only while it
has subscribers; outputs carry the input header unchanged.

`alpha` and `log_period` change live (`ros2 param set`); every other parameter is read-only
once the node runs (set it at start-up), and the loaded model's `class_names` and `palette`
are published as read-only parameters before the first mask, so downstream nodes can tell
what each id means.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

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
    "calibration": "",  # int8: a folder of camera images; empty: synthetic streets (onnxruntime)
    "inference_size": "",  # "1024x512"; empty: the model's pixel count at each image's aspect ratio
    "alpha": 0.5,
    "engine_cache_dir": "",  # where TensorRT engines are cached; empty: ~/.cache/dwrseg-rt
    "force_rebuild": False,  # rebuild the TensorRT engine even if one is cached
    "build_only": False,  # build/export and cache the backend, then exit: for vehicle provisioning
    "reliability": "reliable",  # or "best_effort" (loses large images on stock FastDDS; see the README)
    "log_period": 5.0,  # seconds between timing log lines
}
LIVE = {"alpha", "log_period"}  # applied on the next frame / log line; the rest need a restart


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
        def __init__(self, **options) -> None:
            """`options` go to rclpy's Node (context, parameter_overrides, cli_args)."""
            from rcl_interfaces.msg import ParameterDescriptor

            super().__init__(DEFAULT_NODE, **options)
            for name, default in PARAMETERS.items():
                self.declare_parameter(name, default, ParameterDescriptor(
                    read_only=name not in LIVE, description="changes live" if name in LIVE else "set at start-up; restart to change"))
            self.stats = NodeStats()
            self.warn = RateLimited(self.get_logger().warning)
            self.core: SegmentationCore | None = None
            self.add_on_set_parameters_callback(self.on_set_parameters)

        def on_set_parameters(self, parameters):
            """Checks and applies the live parameters (read-only ones never get here)."""
            from rcl_interfaces.msg import SetParametersResult

            for parameter in parameters:
                if parameter.name == "alpha" and not 0.0 <= float(parameter.value) <= 1.0:
                    return SetParametersResult(successful=False, reason="alpha must be between 0 and 1")
                if parameter.name == "log_period" and not float(parameter.value) > 0:
                    return SetParametersResult(successful=False, reason="log_period must be positive")
            for parameter in parameters:
                if parameter.name == "alpha" and self.core is not None:
                    self.core.overlay_renderer.alpha = float(parameter.value)
                if parameter.name == "log_period" and hasattr(self, "log_timer"):
                    self.log_timer.cancel()
                    self.log_timer = self.create_timer(float(parameter.value), self.log_stats)
            return SetParametersResult(successful=True)

        def log_stats(self) -> None:
            self.get_logger().info(self.stats.summary_and_reset())

        def param(self, name: str):
            return self.get_parameter(name).value

        def configure(self) -> None:
            self.qos = qos_profile(self.param("reliability"))
            self.outputs = {name: self.create_publisher(Image, f"~/{name}", self.qos) for name in OUTPUTS}
            self.timing = {name: self.create_publisher(Float32, f"~/{name}", 10) for name in ("processing_ms", "latency_ms")}
            self.log_timer = self.create_timer(float(self.param("log_period")), self.log_stats)

        def activate(self) -> None:
            from dwrseg_rt.checkpoint import resolve_weights
            from dwrseg_rt.cli import parse_size
            from dwrseg_rt.jobs.segment import load_segmenter
            from dwrseg_rt.export.tensorrt import EngineOptions
            from rcl_interfaces.msg import ParameterDescriptor

            if self.param("engine_cache_dir"):
                os.environ["DWRSEG_RT_CACHE"] = self.param("engine_cache_dir")  # read by the engine cache
            weights = resolve_weights(self.param("weights") or None)
            calibration = Path(self.param("calibration")) if self.param("calibration") else None
            segmenter = load_segmenter(weights, self.param("backend"), parse_size(self.param("inference_size") or None),
                                       self.param("precision") or None, EngineOptions(calibration, force_rebuild=self.param("force_rebuild")),
                                       live=True)
            self.core = SegmentationCore(segmenter, Image, "array.array", float(self.param("alpha")))
            info = segmenter.info
            self.declare_parameter("class_names", info.classes, ParameterDescriptor(
                read_only=True, description="class id -> name of the loaded model (class_mask pixel values)"))
            self.declare_parameter("palette", [v for color in info.palette for v in color], ParameterDescriptor(
                read_only=True, description="class id -> RGB color as a flat list r0,g0,b0,r1,... (color_mask, overlay)"))
            self.get_logger().info(f"{weights.name} on {segmenter.backend.name} at {segmenter.size[0]}x{segmenter.size[1]}" if segmenter.size
                                   else f"{weights.name}: the inference size follows each image's aspect ratio (inference_size sets one)")
            topic = input_topic(self.param("input_topic"), self.param("compressed"))
            kind = CompressedImage if self.param("compressed") else Image
            self.subscription = self.create_subscription(kind, topic, self.on_image, self.qos)
            self.get_logger().info(f"segmenting {topic} -> {', '.join(p.topic_name for p in self.outputs.values())}")

        def on_image(self, msg) -> None:
            received = time.perf_counter()
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
            report.processing_ms = (time.perf_counter() - received) * 1e3  # receive to published
            self.stats.add(report)
            self.timing["processing_ms"].publish(Float32(data=report.processing_ms))
            self.timing["latency_ms"].publish(Float32(data=report.latency_ms))

    return rclpy, SegmentNode


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_first_signal() -> None:
    """SIGINT or SIGTERM (`ros2 launch` sends both to the process group, a terminal user presses
    Ctrl+C twice) raises KeyboardInterrupt once in the main thread; later ones do nothing, so the
    cleanup runs to its end. rclpy's own handlers stay off: they shut the context down from
    another thread while this one destroys the node (a segfault under load)."""
    stopping = False

    def handler(signum, frame) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    for number in STOP_SIGNALS:
        signal.signal(number, handler)


def main(args: list[str] | None = None) -> None:
    """Entry point of `ros2 run dwrseg_rt segment_node` and the launch file. Ctrl+C (SIGINT,
    also sent to the whole process group by `ros2 launch`) or SIGTERM ends it cleanly with exit 0."""
    try:
        rclpy, SegmentNode = make_node_class()
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        stop_on_first_signal()
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        try:
            executor = SingleThreadedExecutor()
            node = SegmentNode()
            try:
                node.configure()
                node.activate()
                if node.param("build_only"):
                    node.get_logger().info("build_only: backend prepared and cached; exiting")
                    return
                executor.add_node(node)
                while True:  # short waits: Python runs the signal handler between them
                    executor.spin_once(timeout_sec=0.1)
            finally:
                executor.shutdown()
                node.destroy_node()
        finally:
            rclpy.try_shutdown()
    except KeyboardInterrupt:
        pass  # Ctrl+C or SIGTERM, at any point: a clean stop
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:  # Python's teardown puts the default handlers back, and a late signal would kill it mid-way
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
