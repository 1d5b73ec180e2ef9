"""ros2 launch dwrseg_rt segment.launch.py [image_topic:=...] [weights:=...] [backend:=...]
[precision:=fp16] [params_file:=...] [namespace:=...] [compressed:=true] [reliability:=reliable]"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("dwrseg_rt"), "config", "params.yaml")
    arguments = {
        "image_topic": ("/camera/image_raw", "input sensor_msgs/Image topic"),
        "compressed": ("false", "subscribe to <image_topic>/compressed instead"),
        "weights": ("", ".pt or .onnx weights (empty: the shipped demo model)"),
        "backend": ("auto", "auto | tensorrt | torch | onnxruntime"),
        "precision": ("", "fp32 | fp16 | int8 (empty: fp16 on GPUs, fp32 on CPU)"),
        "inference_size": ("", "WxH (empty: the checkpoint's)"),
        "reliability": ("best_effort", "best_effort | reliable"),
        "params_file": (default_params, "YAML with the node's parameters"),
        "namespace": ("", "namespace for the node and its topics"),
    }
    overrides = {name: LaunchConfiguration(name) for name in ("compressed", "weights", "backend", "precision", "inference_size", "reliability")}
    node = Node(
        package="dwrseg_rt",
        executable="segment_node",
        name="segment_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"input_topic": LaunchConfiguration("image_topic"), **overrides}],
        output="screen",
    )
    return LaunchDescription([DeclareLaunchArgument(n, default_value=d, description=h) for n, (d, h) in arguments.items()] + [node])
