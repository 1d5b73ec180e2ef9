"""How many camera-size images arrive between ROS 2 processes (rclpy, FastDDS, one host), best-effort vs reliable.

Per image size and QoS, frames are published at a fixed rate from this process to another one:
- transport: a bare rclpy subscriber process counts what arrives (what any node's images go through);
- node: the real segment_node process, and its class masks counted back here.
Each measurement runs on a domain of its own. Prints a table and writes
benchmarks/results/ros-delivery.json (machine, versions, settings, numbers).
Usage: python benchmarks/ros_delivery.py [--frames 30] [--rate 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [(640, 480), (1280, 720), (1920, 1080)]
COUNTER = """
import signal, sys, rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
rclpy.init()
node, count = Node("counter"), [0]
policy = ReliabilityPolicy.RELIABLE if sys.argv[1] == "reliable" else ReliabilityPolicy.BEST_EFFORT
node.create_subscription(Image, "/camera/image_raw", lambda m: count.__setitem__(0, count[0] + 1), QoSProfile(depth=1, reliability=policy))
print("ready", flush=True)
try:
    rclpy.spin(node)
except BaseException:
    pass
print(count[0], flush=True)
"""


def frame(width: int, height: int, index: int):
    from sensor_msgs.msg import Image

    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = np.full(width * height * 3, index % 255, np.uint8).tobytes()
    msg.header.frame_id = str(index)
    return msg


def measure(size, reliability: str, frames: int, rate: float, path: str, domain: int) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    env = {**os.environ, "ROS_DOMAIN_ID": str(domain)}
    if path == "transport":
        command = [sys.executable, "-c", COUNTER, reliability]
    else:
        command = [sys.executable, "-c", "from dwrseg_rt.ros.node import main; main()", "--ros-args", "-p", f"reliability:={reliability}",
                   "-p", "backend:=torch", "-p", "inference_size:=128x96"]
    other = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    context = rclpy.Context()
    rclpy.init(context=context)
    peer = Node("bench_peer", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(peer)
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT)
    received: list = []
    if path == "node":
        peer.create_subscription(Image, "/segment_node/class_mask", received.append, qos)
    publisher = peer.create_publisher(Image, "/camera/image_raw", qos)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (publisher.get_subscription_count() == 0 or
                                           (path == "node" and peer.count_publishers("/segment_node/class_mask") == 0)):
        executor.spin_once(timeout_sec=0.05)
    if path == "node":  # until the node has matched us too (it does no work for outputs nobody wants)
        while time.monotonic() < deadline and not received:
            publisher.publish(frame(*size, 0))
            end = time.monotonic() + 0.5
            while time.monotonic() < end and not received:
                executor.spin_once(timeout_sec=0.05)
        time.sleep(1.0)
        executor.spin_once(timeout_sec=0.05)
        received.clear()
    else:
        time.sleep(1.0)
    messages = [frame(*size, i) for i in range(frames)]
    for msg in messages:
        publisher.publish(msg)
        end = time.monotonic() + 1 / rate
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    os.killpg(other.pid, signal.SIGINT)
    output, _ = other.communicate(timeout=30)
    executor.shutdown()
    peer.destroy_node()
    rclpy.try_shutdown(context=context)
    return int(output.strip().splitlines()[-1]) if path == "transport" else len(received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "ros-delivery.json")
    args = parser.parse_args()
    from dwrseg_rt.environment import environment_report

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rows, domain = [], 120
    print(f"{'size':>10} {'qos':>12} {'path':>10}  received")
    for size in SIZES:
        for reliability in ("best_effort", "reliable"):
            for path in ("transport", "node"):
                domain += 1
                got = measure(size, reliability, args.frames, args.rate, path, domain)
                rows.append({"size": f"{size[0]}x{size[1]}", "bytes": size[0] * size[1] * 3, "qos": reliability, "path": path,
                             "sent": args.frames, "received": got, "delivered": round(got / args.frames, 3)})
                print(f"{rows[-1]['size']:>10} {reliability:>12} {path:>10}  {got:3d}/{args.frames} {100 * got / args.frames:5.1f}%", flush=True)
    report = {"benchmark": "ros-delivery", "settings": {"frames": args.frames, "rate_hz": args.rate, "depth": 1, "processes": 2,
                                                        "rmw": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp (default)"),
                                                        "discovery_range": os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"],
                                                        "node_weights": "camvid (shipped)", "node_inference_size": "128x96"},
              "machine": environment_report(), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
