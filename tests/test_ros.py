"""ROS 2 side without rclpy: real rosbag2 files, real DDS traffic on loopback, real colcon (whose installed
executable runs the real rclpy node)."""

import os
from dataclasses import dataclass
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_cli
from dwrseg_rt.checkpoint import ModelInfo, load_checkpoint, save_checkpoint
from dwrseg_rt.data.labels import CITYSCAPES
from dwrseg_rt.model import build_model
from dwrseg_rt.data.synth import Street
from dwrseg_rt.ros.bag import storage_name
from dwrseg_rt.ros.core import SegmentationCore, output_topic
from dwrseg_rt.ros.messages import UnsupportedImage, image_to_rgb, make_image
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.segmenter import Segmenter

rosbags = pytest.importorskip("rosbags")
from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

TYPES = get_typestore(Stores.ROS2_HUMBLE)
Image = TYPES.types["sensor_msgs/msg/Image"]
CompressedImage = TYPES.types["sensor_msgs/msg/CompressedImage"]
Header = TYPES.types["std_msgs/msg/Header"]
Time = TYPES.types["builtin_interfaces/msg/Time"]
String = TYPES.types["std_msgs/msg/String"]


def header(index: int) -> object:
    return Header(stamp=Time(sec=1700000000 + index, nanosec=123456 + index), frame_id=f"camera_{index % 2}")


def street(index: int, size=(96, 48)) -> np.ndarray:
    return Street(21, *size).render(index / 10)[0]


def raw_image(rgb: np.ndarray, encoding: str, pad: int, index: int = 0) -> object:
    converted = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
                 "bgra8": np.dstack([rgb[..., ::-1], np.zeros(rgb.shape[:2], np.uint8)]), "mono8": rgb[..., 0]}[encoding]
    rows = converted.reshape(rgb.shape[0], -1)
    padded = np.zeros((rows.shape[0], rows.shape[1] + pad), np.uint8)
    padded[:, : rows.shape[1]] = rows
    return Image(header=header(index), height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0,
                 step=padded.shape[1], data=padded.reshape(-1))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("pad", [0, 5])
def test_raw_images_of_every_encoding_and_row_padding(encoding, pad):
    rgb = street(0)
    decoded = image_to_rgb(raw_image(rgb, encoding, pad))
    expected = np.repeat(rgb[..., :1], 3, axis=2) if encoding == "mono8" else rgb
    assert np.array_equal(decoded, expected)


def camera_bytes(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """What a camera sends for `rgb`: YUV 4:2:2 (BT.601, limited range, chroma of each pixel pair
    averaged) in UYVY or YUYV order, or the raw Bayer mosaic (bayer_<2x2 pattern>8)."""
    if encoding.startswith("bayer"):
        mosaic = np.zeros(rgb.shape[:2], np.uint8)
        for colour, (dy, dx) in zip(encoding[6:10], [(0, 0), (0, 1), (1, 0), (1, 1)]):
            mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(colour)]
        return mosaic
    r, g, b = np.moveaxis(rgb.astype(float), 2, 0)
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    y = 16 + 219 / 255 * luma
    cb, cr = (128 + 224 / 255 * c for c in ((b - luma) / 1.772, (r - luma) / 1.402))
    u, v = (c.reshape(c.shape[0], -1, 2).mean(axis=2) for c in (cb, cr))
    order = (u, y[:, 0::2], v, y[:, 1::2]) if encoding == "yuv422" else (y[:, 0::2], u, y[:, 1::2], v)
    return np.clip(np.round(np.stack(order, axis=2)), 0, 255).astype(np.uint8).reshape(rgb.shape[0], -1)


CAMERA_ENCODINGS = ["yuv422", "yuv422_yuy2", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"]


@pytest.mark.parametrize("encoding", CAMERA_ENCODINGS)
def test_camera_encodings_yuv422_and_bayer(encoding):
    """A USB camera's YUV 4:2:2 and a machine-vision camera's Bayer mosaic reach the model in
    the camera's colours: close to the scene (what chroma subsampling and demosaicing lose on
    a synthetic street's sharp edges), far from it when read in any other byte order."""
    rgb = street(0)

    def error(read_as: str) -> float:
        data = camera_bytes(rgb, encoding)
        message = Image(header=header(0), height=rgb.shape[0], width=rgb.shape[1], encoding=read_as, is_bigendian=0,
                        step=data.shape[1], data=data.reshape(-1))
        return float(np.abs(image_to_rgb(message).astype(int) - rgb).mean())

    family = [e for e in CAMERA_ENCODINGS if e[:4] == encoding[:4]]
    assert error(encoding) < (2 if encoding.startswith("yuv") else 4)
    assert all(error(other) > 3 * error(encoding) for other in family if other != encoding)
    odd = Image(header=header(0), height=47, width=95, encoding=encoding, is_bigendian=0, step=95 * 2, data=bytes(95 * 2 * 47))
    with pytest.raises(UnsupportedImage, match=f"{encoding} image of size 95x47: .* sides must be even"):
        image_to_rgb(odd)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_images(fmt):
    rgb = street(1)
    ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    decoded = image_to_rgb(CompressedImage(header=header(1), format=fmt, data=encoded.reshape(-1)))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < (6 if fmt == "jpeg" else 0.001)


@dataclass
class AnyImage:
    """The field set every ROS layer's Image has."""

    header: object
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: object


@pytest.mark.parametrize("data_as", ["array", "bytes", "array.array"])
def test_output_images_round_trip_in_every_data_container(data_as):
    """rosbags takes numpy data, CycloneDDS bytes, rclpy array.array('B'): all read back the same."""
    rgb = street(3)
    message = make_image(AnyImage, header(3), rgb, "rgb8", data_as)
    assert message.step == 96 * 3 and message.header.frame_id == "camera_1"
    assert np.array_equal(image_to_rgb(message), rgb)
    mono = make_image(AnyImage, header(3), rgb[..., 0], "mono8", data_as)
    assert np.array_equal(image_to_rgb(mono)[..., 0], rgb[..., 0])


def test_data_in_any_container_and_one_pixel_wide_or_tall_images():
    rgb = street(2)
    message = raw_image(rgb, "rgb8", 4)
    as_rows = message.data.reshape(rgb.shape[0], -1)  # a 2-D numpy array (some bridges hand one over)
    for data in (as_rows, as_rows.reshape(-1).tolist(), bytes(as_rows.reshape(-1))):
        message.data = data
        decoded = image_to_rgb(message)
        assert decoded.dtype == np.uint8 and np.array_equal(decoded, rgb)
    for shape in ((1, 7, 3), (5, 1, 3), (1, 1, 3)):
        tiny = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
        assert np.array_equal(image_to_rgb(raw_image(tiny, "rgb8", 0)), tiny)
        assert np.array_equal(image_to_rgb(raw_image(tiny, "mono8", 0)), np.repeat(tiny[..., :1], 3, axis=2))


def test_output_images_are_plain_little_endian_uint8_whatever_the_class_map_type():
    class_map = np.arange(24, dtype=np.int32).reshape(4, 6) * 10  # TensorRT hands int32 ids
    message = make_image(AnyImage, header(0), class_map, "mono8", "array.array")
    assert message.data.typecode == "B" and message.is_bigendian == 0 and message.step == 6
    assert list(message.data) == class_map.reshape(-1).tolist()


def test_unusable_inputs_raise_a_clear_error():
    bad = raw_image(street(0), "rgb8", 0)
    bad.encoding = "16UC1"
    with pytest.raises(UnsupportedImage, match="unsupported image encoding '16UC1'; use one of rgb8, bgr8, rgba8"):
        image_to_rgb(bad)
    empty = raw_image(street(0), "rgb8", 0)
    empty.width = 0
    with pytest.raises(UnsupportedImage, match="rgb8 image of size 0x48 holds no pixels"):
        image_to_rgb(empty)
    with pytest.raises(UnsupportedImage, match="cannot decode CompressedImage of format 'jpeg'"):
        image_to_rgb(CompressedImage(header=header(0), format="jpeg", data=np.zeros(0, np.uint8)))
    short = raw_image(street(0), "rgb8", 0)
    short.data = short.data[:100]
    with pytest.raises(UnsupportedImage, match="bytes of data"):
        image_to_rgb(short)
    with pytest.raises(UnsupportedImage, match="tiff"):
        image_to_rgb(CompressedImage(header=header(0), format="tiff", data=np.zeros(10, np.uint8)))


@pytest.fixture
def segmenter(checkpoint):
    model, info = load_checkpoint(checkpoint)
    return Segmenter(TorchBackend(model), info, (96, 48))


def test_core_copies_the_header_and_makes_only_wanted_outputs(segmenter):
    msg = raw_image(street(2), "bgr8", 3, index=7)
    outputs, report = SegmentationCore(segmenter, Image, "array").process(msg, {"class_mask", "overlay"})
    assert set(outputs) == {"class_mask", "overlay"}
    mask = outputs["class_mask"]
    assert mask.header is msg.header and mask.encoding == "mono8" and (mask.height, mask.width) == (48, 96)
    assert np.array_equal(mask.data.reshape(48, 96), segmenter.segment(street(2)))
    assert outputs["overlay"].encoding == "rgb8" and outputs["overlay"].step == 96 * 3
    assert report.processing_ms > 0
    # the message survives CDR serialisation as a ROS 2 node would send it
    again = TYPES.deserialize_cdr(TYPES.serialize_cdr(mask, "sensor_msgs/msg/Image"), "sensor_msgs/msg/Image")
    assert again.header.stamp.sec == 1700000007 and again.header.frame_id == "camera_1"


def write_bag(path: Path, storage: StoragePlugin, compressed: bool, frames: int = 5) -> None:
    with Writer(path, version=9, storage_plugin=storage) as writer:
        kind = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        camera = writer.add_connection("/camera/image_raw" + ("/compressed" if compressed else ""), kind, typestore=TYPES)
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=TYPES)
        for index in range(frames):
            stamp = 1_000_000_000 * (index + 1)
            writer.write(chatter, stamp - 1000, TYPES.serialize_cdr(String(data=f"hello {index}"), "std_msgs/msg/String"))
            if compressed:
                ok, png = cv2.imencode(".png", cv2.cvtColor(street(index), cv2.COLOR_RGB2BGR))
                msg = CompressedImage(header=header(index), format="png", data=png.reshape(-1))
            else:
                msg = raw_image(street(index), "rgb8", 0, index)
            writer.write(camera, stamp, TYPES.serialize_cdr(msg, kind))
        writer.write(chatter, 99 * 1_000_000_000, TYPES.serialize_cdr(String(data="bye"), "std_msgs/msg/String"))


def read_bag(path: Path) -> dict:
    topics: dict = {}
    with Reader(path) as reader:
        storage = storage_name(reader)
        for connection, timestamp, raw in reader.messages():
            topics.setdefault(connection.topic, []).append((timestamp, TYPES.deserialize_cdr(raw, connection.msgtype)))
    return {"storage": storage, "topics": topics}


@pytest.mark.parametrize("storage,compressed", [(StoragePlugin.SQLITE3, False), (StoragePlugin.MCAP, True)], ids=["sqlite3-raw", "mcap-compressed"])
def test_bag_gets_the_outputs_with_headers_and_timestamps_kept(storage, compressed, checkpoint, tmp_path, segmenter):
    source = tmp_path / "drive"
    write_bag(source, storage, compressed)
    topic = "/camera/image_raw" + ("/compressed" if compressed else "")
    result = run_cli("bag", source, tmp_path / "segmented", "--topic", topic, "--weights", checkpoint, "--size", "96x48")
    assert result.returncode == 0, result.stderr
    before, after = read_bag(source), read_bag(tmp_path / "segmented")
    assert after["storage"] == before["storage"]
    for name, messages in before["topics"].items():  # originals all there, same times and content
        assert [t for t, _ in after["topics"][name]] == [t for t, _ in messages]
    assert [m.data for _, m in after["topics"]["/chatter"]] == [m.data for _, m in before["topics"]["/chatter"]]
    inputs = before["topics"][topic]
    for name in ("class_mask", "color_mask", "overlay"):
        outputs = after["topics"][output_topic("segment_node", name)]
        assert [t for t, _ in outputs] == [t for t, _ in inputs]
        for (_, out), (_, msg) in zip(outputs, inputs):
            assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) == (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
    first_mask = after["topics"]["/segment_node/class_mask"][0][1]
    assert np.array_equal(first_mask.data.reshape(48, 96), segmenter.segment(image_to_rgb(inputs[0][1])))
    assert not list(tmp_path.glob(".*partial*"))


def test_bag_errors_leave_no_output(checkpoint, tmp_path):
    source = tmp_path / "drive"
    write_bag(source, StoragePlugin.SQLITE3, False, frames=2)
    missing = run_cli("bag", source, tmp_path / "out", "--topic", "/front/image", "--weights", checkpoint)
    assert missing.returncode != 0 and "/camera/image_raw" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    wrong_type = run_cli("bag", source, tmp_path / "out", "--topic", "/chatter", "--weights", checkpoint)
    assert wrong_type.returncode != 0 and "std_msgs/msg/String" in wrong_type.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9")
    bad = run_cli("bag", broken, tmp_path / "out", "--topic", "/camera/image_raw", "--weights", checkpoint)
    assert bad.returncode != 0 and "cannot read bag" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*partial*"))
    (tmp_path / "out").mkdir()
    exists = run_cli("bag", source, tmp_path / "out", "--topic", "/camera/image_raw", "--weights", checkpoint)
    assert exists.returncode != 0 and "--force" in exists.stderr


DDS_CONFIG = """<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface name="lo"/></Interfaces>
<AllowMulticast>false</AllowMulticast></General><Discovery><Peers><Peer address="127.0.0.1"/></Peers>
<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>40</MaxAutoParticipantIndex></Discovery></Domain></CycloneDDS>"""


@pytest.fixture
def dds(tmp_path, monkeypatch):
    """The bridge's DDS module, with CycloneDDS confined to loopback for this test."""
    pytest.importorskip("cyclonedds")
    config = tmp_path / "cyclonedds.xml"
    config.write_text(DDS_CONFIG)
    monkeypatch.setenv("CYCLONEDDS_URI", config.as_uri())  # read when a participant is created
    from dwrseg_rt.ros import dds

    return dds


def start_bridge(checkpoint, domain: int, count: int, reliability: str = "reliable") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dwrseg_rt", "ros-dds", "--domain", str(domain), "--count", str(count),
                             "--weights", str(checkpoint), "--size", "96x48", "--backend", "torch", "--reliability", reliability],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})


def test_dds_bridge_end_to_end_on_loopback(checkpoint, dds):
    """Counts, not timings: each frame is sent once the previous one is answered (or, for an unusable
    frame, logged), so the bridge's depth-1 queue never has to hold two; passes on a loaded machine."""
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    domain = 42
    bridge = start_bridge(checkpoint, domain, 3)
    log: list[str] = []
    reader_thread = threading.Thread(target=lambda: log.extend(bridge.stderr), daemon=True)
    reader_thread.start()
    reliable = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepAll)
    try:
        participant = DomainParticipant(domain)
        writer = DataWriter(participant, Topic(participant, "rt/camera/image_raw", dds.Image), qos=reliable)
        readers = {name: DataReader(participant, Topic(participant, f"rt/segment_node/{name}", dds.Image), qos=reliable)
                   for name in ("class_mask", "color_mask", "overlay")}
        sent, received = {}, {name: [] for name in readers}

        def collect() -> None:
            for name, reader in readers.items():
                received[name].extend(s for s in reader.take(10) if isinstance(s, dds.Image))

        def wait_for(condition, timeout: float = 120) -> bool:
            deadline = time.monotonic() + timeout
            while not condition() and time.monotonic() < deadline and bridge.poll() is None:
                time.sleep(0.05)
                collect()
            collect()
            return condition()

        def send_good(index: int) -> None:
            stamp = dds.Header(dds.Time(1700000000 + index, 500 + index), f"cam{index}")
            sent[(stamp.stamp.sec, stamp.stamp.nanosec)] = stamp.frame_id
            writer.write(dds.Image(stamp, 48, 96, "rgb8", 0, 96 * 3, street(index).tobytes()))

        index = 0
        while not received["class_mask"] and bridge.poll() is None and index < 200:  # until matched both ways
            send_good(index)
            index += 1
            wait_for(lambda: bool(received["class_mask"]), 1)
        bad = dds.Image(dds.Header(dds.Time(1, 0), "bad"), 48, 96, "16UC1", 0, 96 * 2, bytes(96 * 2 * 48))
        writer.write(bad)
        assert wait_for(lambda: any("unsupported image encoding" in line for line in log)), "the bad frame was never seen"
        writer.write(bad)  # a second one inside the log's rate-limit period: counted, not logged again
        time.sleep(1)
        while len(received["class_mask"]) < 3 and bridge.poll() is None:
            answered = len(received["class_mask"])
            send_good(index)
            index += 1
            wait_for(lambda: len(received["class_mask"]) > answered, 60)
        bridge.wait(timeout=60)
    finally:
        if bridge.poll() is None:
            bridge.kill()
    stdout = bridge.stdout.read()
    reader_thread.join(timeout=10)
    stderr = "".join(log)
    assert bridge.returncode == 0, stderr
    assert len(received["class_mask"]) >= 3, stderr
    for mask in received["class_mask"]:
        key = (mask.header.stamp.sec, mask.header.stamp.nanosec)
        assert sent[key] == mask.header.frame_id  # header passed through unchanged
        assert (mask.encoding, mask.height, mask.width, mask.step) == ("mono8", 48, 96, 96)
        assert max(mask.data) < 19
    assert all(o.encoding == "rgb8" for o in received["overlay"])
    assert all(m.header.frame_id != "bad" for m in received["class_mask"])
    assert "processed 3 frames" in stdout and "(0 unusable)" not in stdout  # skipped, counted, went on
    assert stderr.count("unsupported image encoding '16UC1'") == 1  # logged once: rate-limited


def test_dds_bridge_does_no_work_until_someone_subscribes_and_advertises_type_hashes(checkpoint, dds):
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
    from cyclonedds.core import Policy
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    bridge = start_bridge(checkpoint, 43, 2)
    try:
        participant = DomainParticipant(43)
        writer = DataWriter(participant, Topic(participant, "rt/camera/image_raw", dds.Image))

        def send(index: int) -> None:
            writer.write(dds.Image(dds.Header(dds.Time(index, 0), "cam"), 48, 96, "rgb8", 0, 96 * 3, street(index).tobytes()))
            time.sleep(0.3)

        deadline = time.time() + 120
        while writer.get_publication_matched_status().current_count == 0 and time.time() < deadline:
            time.sleep(0.2)  # until the bridge's reader is up
        for index in range(8):  # frames arrive, but no output has a subscriber
            send(index)
        assert bridge.poll() is None, "the bridge segmented frames nobody subscribed to"
        advertised = {sample.topic_name: sample.qos[Policy.Userdata].data
                      for sample in BuiltinDataReader(participant, BuiltinTopicDcpsPublication).take(64) if Policy.Userdata in sample.qos}
        assert advertised["rt/segment_node/overlay"] == f"typehash={dds.TYPE_HASHES['sensor_msgs/msg/Image']};".encode()
        assert advertised["rt/segment_node/latency_ms"] == f"typehash={dds.TYPE_HASHES['std_msgs/msg/Float32']};".encode()
        reader = DataReader(participant, Topic(participant, "rt/segment_node/overlay", dds.Image))
        received, index = [], 8
        while bridge.poll() is None and time.time() < deadline:
            send(index)
            index += 1
            received += [s for s in reader.take(10) if isinstance(s, dds.Image)]
        time.sleep(0.5)
        received += [s for s in reader.take(10) if isinstance(s, dds.Image)]
    finally:
        if bridge.poll() is None:
            bridge.kill()
    stdout, stderr = bridge.communicate()
    assert bridge.returncode == 0, stderr
    assert received and all(o.encoding == "rgb8" and o.header.stamp.sec >= 8 for o in received)  # only frames sent after subscribing


def test_dds_type_hashes_are_the_ones_jazzy_computes(dds):
    """REP-2011 hashes from the message definitions (rosbags implements the algorithm); ROS 2
    Jazzy prints the same ones in `ros2 topic info -v`."""
    jazzy = get_typestore(Stores.ROS2_JAZZY)
    for message_class in (dds.Image, dds.CompressedImage, dds.Float32):
        name = dds.ros_type(message_class)
        assert dds.TYPE_HASHES[name] == jazzy.hash_rihs01(name)


def test_warnings_are_rate_limited():
    from dwrseg_rt.ros.core import RateLimited

    lines = []
    warn = RateLimited(lines.append, period=60.0)
    for _ in range(100):
        warn("input", "unsupported image encoding 'yuv422'")
    warn("other", "something else")
    assert lines == ["unsupported image encoding 'yuv422'", "something else"]


def test_colcon_builds_the_ros2_package(tmp_path):
    colcon = shutil.which("colcon") or shutil.which("colcon", path=sysconfig.get_path("scripts"))
    assert colcon, "colcon comes with the dev extra (colcon-common-extensions)"
    workspace = Path(__file__).resolve().parents[1] / "ros2_ws" / "src"
    result = subprocess.run([colcon, "build", "--base-paths", str(workspace), "--build-base", str(tmp_path / "build"),
                             "--install-base", str(tmp_path / "install")], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "dwrseg_rt"
    for path in ("share/dwrseg_rt/launch/segment.launch.py", "share/dwrseg_rt/config/params.yaml", "lib/dwrseg_rt/segment_node",
                 "share/dwrseg_rt/package.xml", "share/ament_index/resource_index/packages/dwrseg_rt"):
        assert (prefix / path).is_file(), path
    # the installed executable finds its entry point beside the pip-installed library and runs
    # the real rclpy node (the dev extra installs the Jazzy wheels): build_only loads and exits
    site = next(prefix.glob("lib/python3*/site-packages"))
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, build_model("b", 19).eval(), ModelInfo.for_labels("b", CITYSCAPES, input_size=(96, 48)))
    node = subprocess.run([str(prefix / "lib/dwrseg_rt/segment_node"), "--ros-args", "-p", f"weights:={checkpoint}",
                           "-p", "backend:=torch", "-p", "build_only:=true"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(site), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, timeout=120)
    assert node.returncode == 0 and "build_only" in node.stderr + node.stdout and "Traceback" not in node.stderr, node.stderr
    compile((prefix / "share/dwrseg_rt/launch/segment.launch.py").read_text(), "segment.launch.py", "exec")
