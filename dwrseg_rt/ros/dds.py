"""The segmentation node over CycloneDDS with ROS 2 wire types: no ROS install needed.

ROS 2 (rmw_cyclonedds_cpp) names a topic `/a/b` as DDS topic `rt/a/b` and a message type
`pkg/msg/T` as `pkg::msg::dds_::T_`; payloads are XCDR1. With the same names and field
layout, a ROS 2 graph on the same domain sees this bridge's topics as ordinary ones.
Every endpoint also carries its type's REP-2011 hash in USER_DATA (`typehash=RIHS01_...;`), as
the rmw layers of Iron and later do: without it a Jazzy node warns about every endpoint of ours
and `ros2 topic info -v` shows no type hash.
(No `from __future__ import annotations` here: CycloneDDS reads the field types at runtime.)
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from dwrseg_rt.errors import UserError
from dwrseg_rt.ros.core import (OUTPUTS, NodeStats, RateLimited, SegmentationCore, check_ros_name, input_topic, listened,
                                output_topic)
from dwrseg_rt.ros.messages import UnsupportedImage
from dwrseg_rt.runtime.segmenter import Segmenter

try:
    from cyclonedds.idl import IdlStruct
    from cyclonedds.idl.types import array, bounded_str, float32, int32, sequence, uint8, uint32
except ImportError:  # the bridge reports this when it is started
    IdlStruct = None

if IdlStruct is not None:

    @dataclass
    class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
        sec: int32
        nanosec: uint32

    @dataclass
    class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
        stamp: Time
        frame_id: str

    @dataclass
    class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
        header: Header
        height: uint32
        width: uint32
        encoding: str
        is_bigendian: uint8
        step: uint32
        data: sequence[uint8]

    @dataclass
    class CompressedImage(IdlStruct, typename="sensor_msgs::msg::dds_::CompressedImage_"):
        header: Header
        format: str
        data: sequence[uint8]

    @dataclass
    class Float32(IdlStruct, typename="std_msgs::msg::dds_::Float32_"):
        data: float32

    # What rmw layers publish on `ros_discovery_info` so that DDS participants map to ROS nodes.
    @dataclass
    class Gid(IdlStruct, typename="rmw_dds_common::msg::dds_::Gid_"):
        data: array[uint8, 16]

    @dataclass
    class NodeEntitiesInfo(IdlStruct, typename="rmw_dds_common::msg::dds_::NodeEntitiesInfo_"):
        node_namespace: bounded_str[256]
        node_name: bounded_str[256]
        reader_gid_seq: sequence[Gid]
        writer_gid_seq: sequence[Gid]

    @dataclass
    class ParticipantEntitiesInfo(IdlStruct, typename="rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"):
        gid: Gid
        node_entities_info_seq: sequence[NodeEntitiesInfo]


# REP-2011 type hashes as ROS 2 Jazzy computes them, checked in the tests against the
# ones rosbags computes from the message definitions.
TYPE_HASHES = {
    "sensor_msgs/msg/Image": "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47",
    "sensor_msgs/msg/CompressedImage": "RIHS01_15640771531571185e2efc8a100baf923961a4d15d5569652e6cb6691e8e371a",
    "std_msgs/msg/Float32": "RIHS01_7170d3d8f841f7be3172ce5f4f59f3a4d7f63b0447e8b33327601ad64d83d6e2",
    "rmw_dds_common/msg/ParticipantEntitiesInfo": "RIHS01_e725f4a506958c79f95dd693b965722c57b19cd18e7eff984f49561b93dc985d",
}


def ros_type(message_class) -> str:
    """'sensor_msgs::msg::dds_::Image_' -> 'sensor_msgs/msg/Image'."""
    package, kind, _, name = message_class.__idl_typename__.split("::")
    return f"{package}/{kind}/{name.rstrip('_')}"


def endpoint(participant, ros_topic: str, message_class, profile=None):
    """The Topic and QoS for a reader or writer of `message_class` on `ros_topic`, with the type hash."""
    from cyclonedds.core import Policy, Qos
    from cyclonedds.topic import Topic

    hashed = Qos(Policy.Userdata(f"typehash={TYPE_HASHES[ros_type(message_class)]};".encode()))
    return Topic(participant, dds_topic(ros_topic), message_class), (profile + hashed) if profile is not None else hashed


def dds_topic(ros_topic: str) -> str:
    """ROS 2 topic -> DDS topic name as rmw_cyclonedds_cpp writes it."""
    return "rt/" + ros_topic.lstrip("/")


def qos(reliability: str):
    from cyclonedds.core import Policy, Qos
    from cyclonedds.util import duration

    if reliability == "reliable":
        kind = Policy.Reliability.Reliable(duration(milliseconds=100))
    elif reliability == "best_effort":
        kind = Policy.Reliability.BestEffort
    else:
        raise UserError(f"--reliability must be best_effort or reliable, not {reliability!r}")
    return Qos(kind, Policy.History.KeepLast(1), Policy.Durability.Volatile)


def announce_node(participant, namespace: str, readers: list, writers: list):
    """Publish this participant's one node, `segment_node`, and its endpoints on
    `ros_discovery_info` as rmw layers do, so `ros2 node list` and rclpy's graph show it."""
    from cyclonedds.core import Policy, Qos
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    def gid(entity) -> Gid:
        return Gid(list(entity.guid.bytes))

    profile = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.Durability.TransientLocal,
                  Policy.History.KeepLast(1),
                  Policy.Userdata(f"typehash={TYPE_HASHES['rmw_dds_common/msg/ParticipantEntitiesInfo']};".encode()))
    writer = DataWriter(participant, Topic(participant, "ros_discovery_info", ParticipantEntitiesInfo), profile)
    node = NodeEntitiesInfo("/" + namespace.strip("/"), "segment_node", [gid(r) for r in readers], [gid(w) for w in writers])
    writer.write(ParticipantEntitiesInfo(gid(participant), [node]))
    return writer


def subscribers(writer) -> int:
    """How many readers are matched to a CycloneDDS writer now."""
    return writer.get_publication_matched_status().current_count


def check_bridge_arguments(topic: str, namespace: str, reliability: str) -> None:
    """What can be wrong with the command line, checked before any model is loaded, and
    whether CycloneDDS is there at all."""
    check_ros_name(topic, "--input-topic")
    check_ros_name(namespace, "--namespace", empty_ok=True)
    if reliability not in ("reliable", "best_effort"):
        raise UserError(f"--reliability must be best_effort or reliable, not {reliability!r}")
    if IdlStruct is None:
        raise UserError("the DDS bridge needs CycloneDDS: pip install 'dwrseg-rt[ros]' (or pip install cyclonedds)")


def run_bridge(segmenter: Segmenter, topic: str, compressed: bool = False, domain: int = 0, reliability: str = "reliable",
               namespace: str = "", alpha: float = 0.5, count: int | None = None, log: Callable[[str], None] = print,
               log_period: float = 5.0) -> NodeStats:
    """Subscribe to `topic`, publish the three outputs and timing; run until `count` frames
    (or forever) or Ctrl+C. The reader keeps only the newest sample (KeepLast 1)."""
    check_bridge_arguments(topic, namespace, reliability)
    from cyclonedds.core import ReadCondition, SampleState, ViewState, InstanceState, WaitSet
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.util import duration

    profile = qos(reliability)
    participant = DomainParticipant(domain)
    source = input_topic(topic, compressed)
    reader = DataReader(participant, *endpoint(participant, source, CompressedImage if compressed else Image, profile))
    writers = {name: DataWriter(participant, *endpoint(participant, output_topic("segment_node", name, namespace), Image, profile))
               for name in OUTPUTS}
    timing = {name: DataWriter(participant, *endpoint(participant, output_topic("segment_node", name, namespace), Float32))
              for name in ("processing_ms", "latency_ms")}
    _announcement = announce_node(participant, namespace, [reader], [*writers.values(), *timing.values()])  # alive while we run
    core = SegmentationCore(segmenter, Image, "bytes", alpha)
    stats = NodeStats()
    warn = RateLimited(log)
    waitset = WaitSet(participant)
    waitset.attach(ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any))
    log(f"segmenting {source} (DDS {dds_topic(source)}, domain {domain}) -> "
        f"{', '.join(output_topic('segment_node', n, namespace) for n in OUTPUTS)}")
    next_log = time.monotonic() + log_period
    try:
        while count is None or stats.frames < count:
            waitset.wait(duration(milliseconds=200))
            samples = [s for s in reader.take(16) if isinstance(s, (Image, CompressedImage))]  # skip InvalidSample
            if time.monotonic() >= next_log:
                log(stats.summary_and_reset())
                next_log = time.monotonic() + log_period
            wanted = listened({name: subscribers(writer) for name, writer in writers.items()}, map(subscribers, timing.values()))
            if not samples or wanted is None:  # nothing new, or nobody listens: no work
                continue
            try:
                outputs, report = core.process(samples[-1], wanted)  # the newest; older ones are stale
            except UnsupportedImage as exc:
                stats.errors += 1
                warn("input", str(exc))
                continue
            for name, message in outputs.items():
                writers[name].write(message)
            timing["processing_ms"].write(Float32(report.processing_ms))
            timing["latency_ms"].write(Float32(report.latency_ms))
            stats.add(report)
    except KeyboardInterrupt:
        pass
    return stats
