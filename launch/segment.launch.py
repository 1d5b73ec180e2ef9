"""ros2 launch dwrseg_rt segment.launch.py [image_topic:=...] [weights:=...] [backend:=...]
[precision:=fp16] [params_file:=...] [namespace:=...] [compressed:=true] [reliability:=reliable]

Parameters come from `params_file` (default: the package's config/params.yaml); a launch
argument overrides its parameter only when it is given. The file's section for the node is
found under `/**`, `segment_node` or the node's full name with any `namespace`, so a params
file written for the plain node keeps working when a namespace is given.
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
    "calibration": ("calibration", "int8: a folder of camera images"),
    "inference_size": ("inference_size", "WxH, e.g. 1024x512"),
    "reliability": ("reliability", "best_effort | reliable"),
}


def node_parameters(path: str, namespace: str) -> dict:
    """The `ros__parameters` of every section of `path` that names this node (later wins)."""
    with open(path) as handle:
        sections = yaml.safe_load(handle) or {}
    full = "/" + "/".join(part for part in (namespace.strip("/"), "segment_node") if part)
    names = ["/**", "segment_node", "/segment_node", full, full.lstrip("/")]
    parameters = {}
    for name in names:
        parameters.update((sections.get(name) or {}).get("ros__parameters", {}))
    return parameters


def segment_node(context):
    namespace = LaunchConfiguration("namespace").perform(context)
    overrides = {}
    for argument, (parameter, _) in OVERRIDES.items():
        text = LaunchConfiguration(argument).perform(context)
        if text != "":
            overrides[parameter] = yaml.safe_load(text) if parameter == "compressed" else text
    return [Node(
        package="dwrseg_rt",
        executable="segment_node",
        name="segment_node",
        namespace=namespace,
        parameters=[node_parameters(LaunchConfiguration("params_file").perform(context), namespace), overrides],
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
