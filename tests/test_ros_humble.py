"""The node and the launch file use only ROS 2 Python APIs that Humble (JetPack 6) has too.

Humble's rclpy is not on PyPI, so the node's runtime tests run on Jazzy; this test checks every rclpy,
launch and launch_ros name our code uses against the API recorded from Humble's own sources
(tests/data/ros_api.json, made by scripts/ros_api.py).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API = json.loads((ROOT / "tests" / "data" / "ros_api.json").read_text())
ROS_CODE = [ROOT / "dwrseg_rt" / "ros" / "node.py", ROOT / "launch" / "segment.launch.py",
            *sorted((ROOT / "ros2_ws" / "src" / "dwrseg_rt" / "dwrseg_rt_ros").glob("*.py"))]


def missing_from(distro: str, source: str) -> list[str]:
    """Names `source` uses from the tracked ROS modules and classes that `distro` lacks."""
    api, newest = API[distro], API["jazzy"]
    modules = api["modules"]
    have = {name for members in api["classes"].values() for name in members}
    jazzy_members = {name for members in newest["classes"].values() for name in members}
    missing = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in modules:
            missing += [f"{node.module}.{a.name}" for a in node.names if a.name not in modules[node.module]]
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "rclpy" and node.attr not in modules["rclpy"]:
                missing.append(f"rclpy.{node.attr}")
            elif node.attr in jazzy_members and node.attr not in have:
                missing.append(f"<Node, Publisher, Subscription, Executor or QoSProfile>.{node.attr}")
    return missing


def test_the_node_and_launch_file_use_nothing_that_humble_lacks():
    assert len(ROS_CODE) >= 3
    for path in ROS_CODE:
        assert missing_from("humble", path.read_text()) == [], path


def test_the_check_catches_a_jazzy_only_call():
    jazzy_only = """
from rclpy.qos import qos_profile_best_available
import rclpy
class N:
    def f(self):
        self.add_pre_set_parameters_callback(self.g)
        return self.subscription.get_publisher_count()
"""
    assert missing_from("humble", jazzy_only) == ["rclpy.qos.qos_profile_best_available",
                                                  "<Node, Publisher, Subscription, Executor or QoSProfile>.add_pre_set_parameters_callback",
                                                  "<Node, Publisher, Subscription, Executor or QoSProfile>.get_publisher_count"]
    assert missing_from("jazzy", jazzy_only) == []


def test_the_recorded_api_is_the_real_one():
    """A few names every ROS 2 user knows, in both distributions: the file was not emptied or garbled."""
    for distro in ("humble", "jazzy"):
        api = API[distro]
        assert {"init", "try_shutdown", "spin"} <= set(api["modules"]["rclpy"])
        assert {"create_publisher", "create_subscription", "declare_parameter", "add_on_set_parameters_callback"} <= set(api["classes"]["Node"])
        assert {"DeclareLaunchArgument", "OpaqueFunction"} <= set(api["modules"]["launch.actions"])
        assert "Node" in api["modules"]["launch_ros.actions"]
