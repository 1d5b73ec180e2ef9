"""ros2 launch dwrseg_rt segment.launch.py [image_topic:=...] [weights:=...] [backend:=...]
[precision:=fp16] [params_file:=...] [namespace:=...] [compressed:=true] [reliability:=reliable]

Parameters come from `params_file` (default: the package's config/params.yaml); a launch
argument overrides its parameter only when it is given.
"""

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# launch argument -> node parameter it overrides, and its help
OVERRIDES = {
    "image_topic": ("input_topic", "input sensor_msgs/Image topic"),
    "compressed": ("compressed", "true: subscribe to <image_topic>/compressed"),
    "weights": ("weights", "camvid, synth, or a .pt, .onnx or .engine path"),
    "backend": ("backend", "auto | tensorrt | torch | onnxruntime"),
    "precision": ("precision", "fp32 | fp16 | int8"),
    "inference_size": ("inference_size", "WxH, e.g. 1024x512"),
    "reliability": ("reliability", "best_effort | reliable"),
}


def segment_node(context):
    overrides = {}
    for argument, (parameter, _) in OVERRIDES.items():
        text = LaunchConfiguration(argument).perform(context)
        if text != "":
            overrides[parameter] = yaml.safe_load(text) if parameter == "compressed" else text
    return [Node(
        package="dwrseg_rt",
        executable="segment_node",
        name="segment_node",
        namespace=LaunchConfiguration("namespace").perform(context),
        parameters=[LaunchConfiguration("params_file").perform(context), overrides],
        output="screen",
    )]


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("dwrseg_rt"), "config", "params.yaml")
    arguments = [DeclareLaunchArgument(name, default_value="", description=f"{help_text} (default: from params_file)")
                 for name, (_, help_text) in OVERRIDES.items()]
    arguments += [
        DeclareLaunchArgument("params_file", default_value=default_params, description="YAML with the node's parameters"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for the node and its topics"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=segment_node)])
