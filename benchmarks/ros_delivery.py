"""How many camera-size images arrive over ROS 2 (rclpy, FastDDS, one host), best-effort vs reliable.

Two measurements per image size and QoS, at the same input rate:
- transport: a bare rclpy publisher -> subscriber pair, what any node's images go through;
- node: frames into the real segment_node and class masks back (its default: reliable).
Prints a table and writes benchmarks/results/ros-delivery.json (machine, versions, settings, numbers).
Usage: python benchmarks/ros_delivery.py [--frames 30] [--rate 5]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from dwrseg_rt.environment import environment_report
from dwrseg_rt.ros.node import make_node_class

SIZES = [(640, 480), (1280, 720), (1920, 1080)]
POLICIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def frame(width: int, height: int, index: int) -> Image:
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = np.full(width * height * 3, index % 255, np.uint8).tobytes()
    msg.header.frame_id = str(index)
    return msg


def measure(context, size, reliability: str, frames: int, rate: float, through_node: bool) -> int:
    """Frames sent at `rate` Hz; returns how many answers arrived."""
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=POLICIES[reliability])
    nodes = []
    if through_node:
        _, SegmentNode = make_node_class()
        node = SegmentNode(context=context, parameter_overrides=[Parameter("reliability", value=reliability),
                                                                 Parameter("backend", value="torch"),
                                                                 Parameter("inference_size", value="128x96")])
        node.configure()
        node.activate()
        nodes.append(node)
    peer = Node("bench_peer", context=context)
    nodes.append(peer)
    received: list = []
    peer.create_subscription(Image, "/segment_node/class_mask" if through_node else "/camera/image_raw", received.append, qos)
    publisher = peer.create_publisher(Image, "/camera/image_raw", qos)
    executor = MultiThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and publisher.get_subscription_count() == 0:
        time.sleep(0.05)
    if through_node:
        while time.monotonic() < deadline and nodes[0].outputs["class_mask"].get_subscription_count() == 0:
            time.sleep(0.05)
    messages = [frame(*size, i) for i in range(frames)]
    for msg in messages:
        publisher.publish(msg)
        time.sleep(1 / rate)
    time.sleep(2.0)
    executor.shutdown()
    for node in nodes:
        node.destroy_node()
    return len(received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "ros-delivery.json")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", "91")
    context = rclpy.Context()
    rclpy.init(context=context)
    rows = []
    for size in SIZES:
        for reliability in POLICIES:
            for through_node in (False, True):
                got = measure(context, size, reliability, args.frames, args.rate, through_node)
                rows.append({"size": f"{size[0]}x{size[1]}", "bytes": size[0] * size[1] * 3, "qos": reliability,
                             "path": "node" if through_node else "transport", "sent": args.frames, "received": got,
                             "delivered": got / args.frames})
                print(f"{rows[-1]['size']:>10} {reliability:>12} {rows[-1]['path']:>10}  {got:3d}/{args.frames}  "
                      f"{100 * got / args.frames:5.1f}%", flush=True)
    rclpy.try_shutdown(context=context)
    report = {"benchmark": "ros-delivery", "settings": {"frames": args.frames, "rate_hz": args.rate, "depth": 1,
                                                        "rmw": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp (default)"),
                                                        "discovery": os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"],
                                                        "node_inference_size": "128x96"},
              "machine": environment_report(), "rclpy": "ros-jazzy-rclpy wheels", "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
