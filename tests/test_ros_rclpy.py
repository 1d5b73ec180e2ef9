"""The segmentation node against a real rclpy (ROS 2 Jazzy wheels, FastDDS): real DDS traffic on
loopback between the node and a peer node, each test on its own domain."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.data.synth import Street
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.segmenter import Segmenter

rclpy = pytest.importorskip("rclpy", reason="the ROS 2 Jazzy wheels (dev extra) are not installed")
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from dwrseg_rt.ros.node import make_node_class  # noqa: E402

SIZE = (96, 48)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def street(index: int) -> np.ndarray:
    return Street(21, *SIZE).render(index / 10)[0]


def image_msg(rgb: np.ndarray, encoding: str, index: int, pad: int = 0) -> Image:
    opaque = np.full(rgb.shape[:2], 255, np.uint8)
    pixels = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.dstack([rgb, opaque]), "bgra8": np.dstack([rgb[..., ::-1], opaque]),
              "mono8": cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)}[encoding]
    rows = pixels.reshape(pixels.shape[0], -1)
    rows = np.hstack([rows, np.zeros((rows.shape[0], pad), np.uint8)])
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=rows.shape[1])
    msg.data = rows.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 1700000000 + index, 1000 + index, f"cam_{index}"
    return msg


@pytest.fixture
def graph(monkeypatch, checkpoint):
    """A fresh rclpy context on a domain of its own, the node under test and a peer node, spun
    by one executor on a background thread."""
    domain = 100 + (os.getpid() + int(time.monotonic() * 1000)) % 100
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    _, SegmentNode = make_node_class()
    made, executor = [], MultiThreadedExecutor(context=context)

    def start(**parameters):
        overrides = [Parameter(k, value=v) for k, v in {"weights": str(checkpoint), "backend": "torch",
                                                        "inference_size": f"{SIZE[0]}x{SIZE[1]}", **parameters}.items()]
        node = SegmentNode(context=context, parameter_overrides=overrides)
        node.configure()
        node.activate()
        peer = Node("peer", context=context)
        made.extend([node, peer])
        executor.add_node(node)
        executor.add_node(peer)
        return node, peer

    thread = threading.Thread(target=executor.spin, daemon=True)
    yield start, thread
    executor.shutdown()
    for node in made:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def collect(peer, topics: dict[str, type]) -> dict[str, list]:
    received: dict[str, list] = {name: [] for name in topics}
    for name, kind in topics.items():
        peer.create_subscription(kind, name, received[name].append, RELIABLE)
    return received


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def matched(publisher, count: int = 1) -> bool:
    return wait_for(lambda: publisher.get_subscription_count() >= count)


def test_every_encoding_gives_the_right_mask_with_the_header_kept(graph, checkpoint):
    start, thread = graph
    node, peer = start()
    received = collect(peer, {"/segment_node/class_mask": Image, "/segment_node/overlay": Image})
    publisher = peer.create_publisher(Image, "/camera/image_raw", RELIABLE)
    thread.start()
    assert matched(publisher) and wait_for(lambda: node.outputs["class_mask"].get_subscription_count() == 1)
    model, info = load_checkpoint(checkpoint)
    reference = Segmenter(TorchBackend(model), info, SIZE)
    sent = [("rgb8", 0), ("bgr8", 0), ("rgba8", 0), ("bgra8", 0), ("mono8", 0), ("rgb8", 7)]  # the last with rows padded by 7 bytes
    for index, (encoding, pad) in enumerate(sent):
        count = len(received["/segment_node/class_mask"])
        publisher.publish(image_msg(street(index), encoding, index, pad))
        assert wait_for(lambda: len(received["/segment_node/class_mask"]) > count), encoding
    for index, ((encoding, _), mask) in enumerate(zip(sent, received["/segment_node/class_mask"])):
        rgb = street(index) if encoding != "mono8" else cv2.cvtColor(cv2.cvtColor(street(index), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        expected = reference.segment(rgb)
        assert mask.encoding == "mono8" and (mask.height, mask.width) == (SIZE[1], SIZE[0])
        assert np.array_equal(np.frombuffer(bytes(mask.data), np.uint8).reshape(SIZE[1], SIZE[0]), expected), encoding
        assert (mask.header.stamp.sec, mask.header.stamp.nanosec, mask.header.frame_id) == (1700000000 + index, 1000 + index, f"cam_{index}")
    assert wait_for(lambda: len(received["/segment_node/overlay"]) == len(sent))


def test_compressed_input_bad_frames_skipped_and_class_names_published_before_the_first_mask(graph, checkpoint):
    start, thread = graph
    node, peer = start(compressed=True)
    names = node.get_parameter("class_names").value
    palette = node.get_parameter("palette").value
    assert list(names) == load_checkpoint(checkpoint)[1].classes and len(palette) == 3 * len(names)
    received = collect(peer, {"/segment_node/class_mask": Image})
    publisher = peer.create_publisher(CompressedImage, "/camera/image_raw/compressed", RELIABLE)
    thread.start()
    assert matched(publisher) and wait_for(lambda: node.outputs["class_mask"].get_subscription_count() == 1)
    broken = CompressedImage(format="jpeg")
    broken.data = b"not a jpeg"
    publisher.publish(broken)
    for index, kind in enumerate(["png", "jpeg"]):
        msg = CompressedImage(format=kind)
        msg.data = cv2.imencode(f".{kind}", cv2.cvtColor(street(index), cv2.COLOR_RGB2BGR))[1].tobytes()
        msg.header.frame_id = kind
        publisher.publish(msg)
    assert wait_for(lambda: len(received["/segment_node/class_mask"]) == 2)
    assert [m.header.frame_id for m in received["/segment_node/class_mask"]] == ["png", "jpeg"]
    assert wait_for(lambda: node.stats.errors == 1)


def test_no_subscriber_no_work_and_the_output_keeps_up_with_the_input(graph):
    start, thread = graph
    node, peer = start()
    publisher = peer.create_publisher(Image, "/camera/image_raw", RELIABLE)
    thread.start()
    assert matched(publisher)
    for index in range(3):
        publisher.publish(image_msg(street(index), "rgb8", index))
    time.sleep(1.0)
    assert node.stats.frames == 0 and not node.stats.processing_ms  # nobody listened: nothing segmented
    received = collect(peer, {"/segment_node/class_mask": Image, "/segment_node/processing_ms": Float32})
    assert wait_for(lambda: node.outputs["class_mask"].get_subscription_count() == 1)
    sent = 20
    for index in range(sent):  # 5 Hz, well within what the model does at 96x48
        publisher.publish(image_msg(street(index), "rgb8", index))
        time.sleep(0.2)
    masks = received["/segment_node/class_mask"]
    assert wait_for(lambda: bool(masks) and masks[-1].header.frame_id == f"cam_{sent - 1}", timeout=10)  # the newest comes out
    ids = [int(m.header.frame_id.split("_")[1]) for m in masks]
    # in order and never twice; the node keeps the newest input only (depth 1), so a hiccup on a
    # loaded machine may drop an older frame, but nearly all come through
    assert ids == sorted(set(ids)) and len(ids) >= 0.95 * sent
    assert all(m.data > 0 for m in received["/segment_node/processing_ms"])


def test_live_parameters_apply_or_are_refused_with_a_reason(graph):
    start, thread = graph
    node, peer = start(alpha=0.5)
    received = collect(peer, {"/segment_node/overlay": Image})
    publisher = peer.create_publisher(Image, "/camera/image_raw", RELIABLE)
    thread.start()
    assert matched(publisher) and wait_for(lambda: node.outputs["overlay"].get_subscription_count() == 1)
    overlays = []
    for alpha in (0.5, 0.9):
        result = node.set_parameters([Parameter("alpha", value=alpha)])[0]
        assert result.successful
        publisher.publish(image_msg(street(0), "rgb8", 0))
        assert wait_for(lambda: len(received["/segment_node/overlay"]) == len(overlays) + 1)
        overlays.append(np.frombuffer(bytes(received["/segment_node/overlay"][-1].data), np.uint8).astype(int))
    frame = street(0).reshape(-1).astype(int)
    assert np.abs(overlays[1] - frame).mean() > np.abs(overlays[0] - frame).mean() * 1.3  # more color, less frame
    refused = node.set_parameters([Parameter("weights", value="synth")])[0]
    assert not refused.successful and "read-only" in refused.reason
    out_of_range = node.set_parameters([Parameter("alpha", value=2.0)])[0]
    assert not out_of_range.successful and "between 0 and 1" in out_of_range.reason
    assert node.set_parameters([Parameter("class_names", value=["x"])])[0].successful is False


def run_node(checkpoint, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "ROS_DOMAIN_ID": str(150 + os.getpid() % 50), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    return subprocess.Popen([sys.executable, "-c", "from dwrseg_rt.ros.node import main; main()", "--ros-args",
                             "-p", f"weights:={checkpoint}", "-p", "backend:=torch", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGINT, signal.SIGTERM]],
                         ids=["ctrl-c", "ctrl-c-twice", "ctrl-c-then-sigterm"])
def test_sigint_ends_the_node_cleanly_and_ros_args_override_parameters(signals, checkpoint):
    """`ros2 launch` sends SIGINT to the process group and escalates to SIGTERM; a terminal user presses
    Ctrl+C again. However they land (during the cleanup, or during Python's own teardown), the node exits 0."""
    node = run_node(checkpoint, "-p", "inference_size:=64x32")
    log = ""
    deadline = time.monotonic() + 60
    while "segmenting" not in log and time.monotonic() < deadline:
        log += node.stdout.readline()
    assert "at 64x32" in log, log  # the --ros-args override took effect
    for number in signals:
        os.killpg(node.pid, number)
        time.sleep(0.05)
    rest, _ = node.communicate(timeout=30)
    assert node.returncode == 0 and "Traceback" not in rest, rest


def test_a_camera_publishing_best_effort_to_the_reliable_node_is_named_in_the_log(checkpoint, monkeypatch):
    """The commonest reason nothing arrives: a best-effort camera driver and a reliable subscriber never match.
    rclpy says so on the node's side, in one line naming the policy (what users should look for)."""
    node = run_node(checkpoint, "-p", "inference_size:=64x32")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    camera = Node("best_effort_camera", context=context)
    try:
        log = ""
        deadline = time.monotonic() + 60
        while "segmenting" not in log and time.monotonic() < deadline:
            log += node.stdout.readline()
        camera.create_publisher(Image, "/camera/image_raw", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(node.stdout.readline, "")), daemon=True)
        reader.start()
        assert wait_for(lambda: any("incompatible QoS" in line for line in lines), 60), lines
        warning = next(line for line in lines if "incompatible QoS" in line)
        assert "RELIABILITY" in warning and "/camera/image_raw" in warning
    finally:
        os.killpg(node.pid, signal.SIGINT)
        node.wait(timeout=30)
        camera.destroy_node()
        rclpy.try_shutdown(context=context)


def test_the_node_runs_int8_calibrated_on_a_folder_and_refuses_a_thin_one(checkpoint, tmp_path):
    for index in range(8):
        cv2.imwrite(str(tmp_path / f"{index}.png"), cv2.cvtColor(street(index), cv2.COLOR_RGB2BGR))
    args = ("-p", "backend:=onnxruntime", "-p", "precision:=int8", "-p", "inference_size:=64x32")
    node = run_node(checkpoint, *args, "-p", f"calibration:={tmp_path}")
    log = ""
    deadline = time.monotonic() + 120
    while "segmenting" not in log and time.monotonic() < deadline and node.poll() is None:
        log += node.stdout.readline()
    assert "on onnxruntime-int8 at 64x32" in log, log
    os.killpg(node.pid, signal.SIGINT)
    assert node.wait(timeout=30) == 0
    os.remove(tmp_path / "0.png")
    thin = run_node(checkpoint, *args, "-p", f"calibration:={tmp_path}")
    output, _ = thin.communicate(timeout=60)
    assert thin.returncode == 2 and "holds 7 readable images" in output and "Traceback" not in output


def test_a_bad_reliability_is_refused_in_one_line(checkpoint):
    node = run_node(checkpoint, "-p", "reliability:=sometimes")
    output, _ = node.communicate(timeout=60)
    assert node.returncode == 2 and "reliability must be" in output and "Traceback" not in output


dds = pytest.importorskip("dwrseg_rt.ros.dds")


def padding_only(ours: bytes, theirs: bytes) -> bool:
    """Same length, and where they differ ours is a zero in an alignment gap (FastCDR leaves
    padding bytes uninitialised, CycloneDDS zeroes them): the same CDR."""
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    return len(ours) == len(theirs) and all(ours[i] == 0 and (i - 4) % 4 != 0 for i in differing)


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera", "camera_front_left"])
@pytest.mark.parametrize("encoding,width,height", [("mono8", 5, 3), ("rgb8", 7, 2), ("bgra8", 1, 1), ("rgb8", 0, 0)])
def test_bridge_messages_are_the_cdr_rclpy_writes_and_reads(frame_id, encoding, width, height):
    from rclpy.serialization import deserialize_message, serialize_message

    channels = 4 if encoding == "bgra8" else 3 if encoding == "rgb8" else 1
    data = np.arange(width * height * channels, dtype=np.uint8).tobytes()
    theirs = Image(height=height, width=width, encoding=encoding, step=width * channels, is_bigendian=0)
    theirs.data, theirs.header.frame_id = data, frame_id
    theirs.header.stamp.sec, theirs.header.stamp.nanosec = -5, 4_000_000_000
    ours = dds.Image(header=dds.Header(stamp=dds.Time(-5, 4_000_000_000), frame_id=frame_id), height=height, width=width,
                     encoding=encoding, is_bigendian=0, step=width * channels, data=data)
    assert padding_only(ours.serialize(), serialize_message(theirs))
    back = deserialize_message(ours.serialize(), Image)
    assert (back.header.frame_id, back.encoding, back.width, back.height, bytes(back.data)) == (frame_id, encoding, width, height, data)
    assert dds.Image.deserialize(serialize_message(theirs)).serialize() == ours.serialize()
    compressed = CompressedImage(format="jpeg")
    compressed.data, compressed.header.frame_id = data, frame_id
    assert padding_only(dds.CompressedImage(header=dds.Header(stamp=dds.Time(0, 0), frame_id=frame_id), format="jpeg", data=data).serialize(),
                        serialize_message(compressed))
    assert padding_only(dds.Float32(data=1.5).serialize(), serialize_message(Float32(data=1.5)))


LOOPBACK = """<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface name="lo"/></Interfaces>
<AllowMulticast>false</AllowMulticast></General><Discovery><Peers><Peer address="127.0.0.1"/></Peers>
<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>40</MaxAutoParticipantIndex></Discovery></Domain></CycloneDDS>"""


def test_the_dds_bridge_and_an_rclpy_node_talk_both_ways_on_loopback(monkeypatch):
    """CycloneDDS (the bridge, on lo) and FastDDS (rclpy, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) on one domain:
    the bridge shows up as a ROS node, rclpy's images reach it, its masks reach rclpy, headers intact."""
    domain = 60 + os.getpid() % 30
    bridge = subprocess.Popen([sys.executable, "-m", "dwrseg_rt", "ros-dds", "--domain", str(domain), "--weights", "synth",
                               "--backend", "torch", "--size", "96x48", "--count", "100"],
                              env={**os.environ, "CYCLONEDDS_URI": LOOPBACK}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    peer = Node("peer", context=context)
    try:
        masks: list = []
        peer.create_subscription(Image, "/segment_node/class_mask", masks.append, RELIABLE)
        publisher = peer.create_publisher(Image, "/camera/image_raw", RELIABLE)

        executor = SingleThreadedExecutor(context=context)
        executor.add_node(peer)

        def spin_until(condition, timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not condition():
                executor.spin_once(timeout_sec=0.05)
            return bool(condition())

        assert spin_until(lambda: publisher.get_subscription_count() and peer.count_publishers("/segment_node/class_mask"), 60)
        # the bridge announces itself on ros_discovery_info: rclpy's graph (`ros2 node list`) shows the node and its topics
        assert spin_until(lambda: ("segment_node", "/") in peer.get_node_names_and_namespaces(), 20)
        published = dict(peer.get_publisher_names_and_types_by_node("segment_node", "/"))
        assert published["/segment_node/class_mask"] == ["sensor_msgs/msg/Image"] and "/segment_node/latency_ms" in published
        assert dict(peer.get_subscriber_names_and_types_by_node("segment_node", "/")) == {"/camera/image_raw": ["sensor_msgs/msg/Image"]}
        sent = 0
        while not masks and sent < 40:  # until the bridge has matched our reader too (it skips frames nobody wants)
            publisher.publish(image_msg(street(sent), "rgb8", sent))
            sent += 1
            spin_until(lambda: bool(masks), 0.5)
        assert masks, bridge.stdout.read() if bridge.poll() is not None else "no mask came back"
        # counts, not timings: each frame goes out once the previous one's mask is back, so the bridge's
        # depth-1 queue never holds two and a loaded machine loses nothing (masks of the warm-up frames
        # still in flight do not count: each frame waits for its own mask)
        for index in range(100, 110):
            publisher.publish(image_msg(street(index % 10), "rgb8", index))
            assert spin_until(lambda: any(m.header.frame_id == f"cam_{index}" for m in masks), 60), f"no mask for cam_{index}"
        assert all((m.height, m.width, m.encoding) == (48, 96, "mono8") for m in masks)
    finally:
        bridge.kill()
        bridge.communicate()
        peer.destroy_node()
        rclpy.try_shutdown(context=context)


LAUNCH = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService()
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=[a.split(":=", 1) for a in sys.argv[2:]]))
sys.exit(service.run())
"""


def test_ros2_launch_with_a_namespace_and_a_params_file_then_ctrl_c(tmp_path, checkpoint, monkeypatch):
    """`ros2 launch dwrseg_rt segment.launch.py namespace:=robot1 params_file:=my.yaml`, run through
    launch's own LaunchService on the colcon-installed package; Ctrl+C to the process group."""
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI: install it from github.com/ros2/launch_ros (jazzy)")
    import shutil
    import sysconfig

    colcon = shutil.which("colcon") or shutil.which("colcon", path=sysconfig.get_path("scripts"))
    workspace = Path(__file__).resolve().parents[1] / "ros2_ws" / "src"
    built = subprocess.run([colcon, "build", "--base-paths", str(workspace), "--build-base", str(tmp_path / "build"),
                            "--install-base", str(tmp_path / "install")], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    prefix = tmp_path / "install" / "dwrseg_rt"
    site = next(prefix.glob("lib/python3*/site-packages"))
    params = tmp_path / "my.yaml"  # keyed by the plain node name, as users write it
    params.write_text(f"segment_node:\n  ros__parameters:\n    input_topic: /robot1_camera/image\n    weights: {checkpoint}\n"
                      f"    backend: torch\n    inference_size: 64x32\n")
    domain = 200 + os.getpid() % 30
    env = {**os.environ, "AMENT_PREFIX_PATH": f"{prefix}:{os.environ.get('AMENT_PREFIX_PATH', '')}",
           "PYTHONPATH": f"{site}:{os.environ.get('PYTHONPATH', '')}", "ROS_DOMAIN_ID": str(domain),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCH, str(prefix / "share/dwrseg_rt/launch/segment.launch.py"),
                                 "namespace:=robot1", f"params_file:={params}"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    peer = Node("peer", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(peer)
    masks: list = []
    try:
        peer.create_subscription(Image, "/robot1/segment_node/class_mask", masks.append, RELIABLE)
        publisher = peer.create_publisher(Image, "/robot1_camera/image", RELIABLE)
        deadline = time.monotonic() + 90
        while not masks and time.monotonic() < deadline and launcher.poll() is None:
            publisher.publish(image_msg(street(0), "rgb8", 0))
            end = time.monotonic() + 0.5
            while time.monotonic() < end and not masks:
                executor.spin_once(timeout_sec=0.05)
        assert masks, launcher.communicate(timeout=5)[0] if launcher.poll() is not None else "no mask from the launched node"
        assert (masks[0].width, masks[0].height) == SIZE  # masks come at the input's size
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
        output, _ = launcher.communicate(timeout=60)
        executor.shutdown()
        peer.destroy_node()
        rclpy.try_shutdown(context=context)
    assert "at 64x32" in output and "/robot1_camera/image" in output, output  # the params file applied under the namespace
    assert launcher.returncode == 0 and "Traceback" not in output and "process has died" not in output, output
