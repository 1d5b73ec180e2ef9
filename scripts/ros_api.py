"""Record the public ROS 2 Python API of Humble and Jazzy that dwrseg-rt's node and launch file may use,
from the distributions' own sources, into tests/data/ros_api.json (tests/test_ros_humble.py checks our
code against it, so a Jazzy-only call fails on this machine before it fails on a JetPack 6 robot).

Usage: python scripts/ros_api.py RCLPY_GIT LAUNCH_GIT LAUNCH_ROS_GIT
  (git directories of github.com/ros2/rclpy, ros2/launch and ros2/launch_ros, with humble and jazzy branches;
  e.g. `git clone --bare`). Took seconds; last run 2026-12-06.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

# module -> file inside its repository
MODULES = {
    "rclpy": "rclpy/rclpy/__init__.py",
    "rclpy.node": "rclpy/rclpy/node.py",
    "rclpy.qos": "rclpy/rclpy/qos.py",
    "rclpy.executors": "rclpy/rclpy/executors.py",
    "rclpy.publisher": "rclpy/rclpy/publisher.py",
    "rclpy.subscription": "rclpy/rclpy/subscription.py",
    "rclpy.context": "rclpy/rclpy/context.py",
    "rclpy.logging": "rclpy/rclpy/logging.py",
    "rclpy.signals": "rclpy/rclpy/signals.py",
    "launch": "launch/launch/__init__.py",
    "launch.actions": "launch/launch/actions/__init__.py",
    "launch.substitutions": "launch/launch/substitutions/__init__.py",
    "launch.launch_description_sources": "launch/launch/launch_description_sources/__init__.py",
    "launch_ros.actions": "launch_ros/launch_ros/actions/__init__.py",
}
CLASSES = {"Node": "rclpy.node", "Publisher": "rclpy.publisher", "Subscription": "rclpy.subscription",
           "SingleThreadedExecutor": "rclpy.executors", "Executor": "rclpy.executors", "QoSProfile": "rclpy.qos"}


def show(git_dir: str, branch: str, path: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{branch}:{path}"], capture_output=True, text=True, check=True).stdout


def public_names(tree: ast.Module) -> list[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return sorted(n for n in names if not n.startswith("_"))


def members(tree: ast.Module, name: str) -> list[str]:
    """Methods and attributes of class `name`, with those of its base classes in the same module."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    found, queue = set(), [name]
    while queue:
        cls = classes.get(queue.pop())
        if cls is None:
            continue
        for item in ast.walk(cls):
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(item.name)
            elif isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) and item.value.id == "self":
                found.add(item.attr)
        queue.extend(b.id for b in cls.bases if isinstance(b, ast.Name))
    return sorted(n for n in found if not n.startswith("_"))


def main() -> None:
    repos = dict(zip(("rclpy", "launch", "launch_ros"), sys.argv[1:4]))
    api = {}
    for distro in ("humble", "jazzy"):
        trees = {module: ast.parse(show(repos[path.split("/")[0]], distro, path)) for module, path in MODULES.items()}
        api[distro] = {"modules": {module: public_names(tree) for module, tree in trees.items()},
                       "classes": {name: members(trees[module], name) for name, module in CLASSES.items()}}
    target = Path(__file__).resolve().parent.parent / "tests" / "data" / "ros_api.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(api, indent=1) + "\n")
    print(f"wrote {target}: " + ", ".join(f"{d} {sum(map(len, a['modules'].values()))} names" for d, a in api.items()))


if __name__ == "__main__":
    main()
