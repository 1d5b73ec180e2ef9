"""What the segmentation node does, independent of the ROS layer that carries it.

The rclpy node, the CycloneDDS bridge and the rosbag tool all feed messages to one
`SegmentationCore`: message -> RGB -> Segmenter -> class map -> the output messages that
someone wants, each with the input header unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.render import Renderer
from dwrseg_rt.ros.messages import image_to_rgb, make_image
from dwrseg_rt.runtime.segmenter import Segmenter

OUTPUTS = ("class_mask", "color_mask", "overlay")
DEFAULT_NODE = "segment_node"
DEFAULT_INPUT = "/camera/image_raw"


NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_ros_name(name: str, what: str, empty_ok: bool = False) -> None:
    """REP-144 / rcl rules for a topic or namespace without substitutions: tokens of letters,
    digits and underscores, not starting with a digit, joined by single slashes, no trailing slash."""
    if (empty_ok and name in ("", "/")) or all(NAME_TOKEN.fullmatch(t) for t in name.removeprefix("/").split("/")):
        return
    raise UserError(f"{what} {name!r} is not a valid ROS 2 name: use letters, digits and _ in /-separated parts "
                    "that do not start with a digit (e.g. /front_camera/image_raw)")


def output_topic(node_name: str, output: str, namespace: str = "") -> str:
    """`~/class_mask` of node `segment_node` -> `/segment_node/class_mask` (ROS naming)."""
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{node_name}/{output}"


def input_topic(topic: str, compressed: bool) -> str:
    return f"{topic.rstrip('/')}/compressed" if compressed else topic


def stamp_seconds(header: Any) -> float:
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


@dataclass
class FrameReport:
    processing_ms: float
    latency_ms: float  # wall clock now minus the header stamp (meaningful when the camera stamps with system time)


@dataclass
class NodeStats:
    frames: int = 0
    errors: int = 0
    processing_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    def add(self, report: FrameReport) -> None:
        self.frames += 1
        self.processing_ms.append(report.processing_ms)
        self.latency_ms.append(report.latency_ms)

    def summary_and_reset(self) -> str:
        """One log line for the period since the last call."""
        if not self.processing_ms:
            return f"no frames processed ({self.errors} unusable)" if self.errors else "waiting for images"
        text = (f"{len(self.processing_ms)} frames, processing {np.mean(self.processing_ms):.1f} ms mean / "
                f"{np.percentile(self.processing_ms, 90):.1f} ms p90, latency {np.mean(self.latency_ms):.1f} ms mean")
        self.processing_ms.clear()
        self.latency_ms.clear()
        return text


class RateLimited:
    """Calls `log` at most once per `period` seconds per key (a bad stream must not flood logs)."""

    def __init__(self, log: Callable[[str], None], period: float = 5.0) -> None:
        self.log, self.period, self.last = log, period, {}

    def __call__(self, key: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.period:
            self.last[key] = now
            self.log(message)


def listened(outputs: dict[str, int], timing: Iterable[int]) -> set[str] | None:
    """The outputs that have subscribers (name -> subscriber count), or None when nobody
    listens to anything, timing topics included: then a frame is not worth segmenting."""
    wanted = {name for name, count in outputs.items() if count}
    return wanted if wanted or any(timing) else None


class SegmentationCore:
    """Message in, wanted output messages out (header copied), plus timing."""

    def __init__(self, segmenter: Segmenter, image_class: type, data_as: str = "bytes", alpha: float = 0.5) -> None:
        info = segmenter.info
        self.segmenter = segmenter
        self.mask_renderer = Renderer(info.palette, info.classes, "mask")
        self.overlay_renderer = Renderer(info.palette, info.classes, "overlay", alpha)
        self.image_class, self.data_as = image_class, data_as

    def process(self, msg: Any, wanted: set[str] | frozenset[str] = frozenset(OUTPUTS)) -> tuple[dict[str, Any], FrameReport]:
        """Raises `UnsupportedImage` for an input it cannot read."""
        started = time.perf_counter()
        rgb = image_to_rgb(msg)
        outputs = self.messages(msg, rgb, self.segmenter.segment(rgb), wanted)
        done = time.perf_counter()
        return outputs, FrameReport((done - started) * 1e3, (time.time() - stamp_seconds(msg.header)) * 1e3)

    def messages(self, msg: Any, rgb: np.ndarray, class_map: np.ndarray,
                 wanted: set[str] | frozenset[str] = frozenset(OUTPUTS)) -> dict[str, Any]:
        """The wanted output messages for one segmented input, each with the input's header."""
        pictures = {
            "class_mask": lambda: (class_map, "mono8"),
            "color_mask": lambda: (self.mask_renderer(rgb, class_map), "rgb8"),
            "overlay": lambda: (self.overlay_renderer(rgb, class_map), "rgb8"),
        }
        return {name: make_image(self.image_class, msg.header, *pictures[name](), self.data_as) for name in OUTPUTS if name in wanted}
