"""Segment a recorded rosbag2 (sqlite3 or MCAP) into a new bag: every original message plus
the node's output topics, headers copied and bag timestamps kept.

Image messages go through the frame pipeline (decode ahead, segment, write behind) with
the messages between them carried along, so the new bag keeps the original order. The
bag is written under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.sources import Frame
from dwrseg_rt.io.outputs import check_output_path
from dwrseg_rt.ros.core import OUTPUTS, SegmentationCore, output_topic
from dwrseg_rt.ros.messages import UnsupportedImage, image_to_rgb
from dwrseg_rt.runtime.pipeline import run_pipeline
from dwrseg_rt.runtime.segmenter import Segmenter

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def import_rosbags():
    try:
        from rosbags.rosbag2 import Reader, StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise UserError("bag processing needs rosbags: pip install 'dwrseg-rt[ros]' (or pip install rosbags)") from None
    return Reader, Writer, StoragePlugin, get_typestore(Stores.ROS2_HUMBLE)


class OutputBag:
    """The new bag, opened on first use by the thread that writes it (SQLite handles are
    bound to the thread that opened them): the originals' connections plus the outputs."""

    def __init__(self, writer, connections, typestore) -> None:
        self.writer, self.connections, self.typestore = writer, connections, typestore
        self.copies: dict | None = None
        self.outputs: dict = {}
        self.copied = 0

    def _open(self) -> None:
        if self.copies is not None:
            return
        self.writer.open()
        self.copies = {c.id: self.writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
                                                        serialization_format=c.ext.serialization_format,
                                                        offered_qos_profiles=c.ext.offered_qos_profiles) for c in self.connections}
        self.outputs = {name: self.writer.add_connection(output_topic("segment_node", name), "sensor_msgs/msg/Image", typestore=self.typestore)
                        for name in OUTPUTS}

    def copy(self, messages: list) -> None:
        self._open()
        for connection_id, timestamp, raw in messages:
            self.writer.write(self.copies[connection_id], timestamp, raw)
            self.copied += 1

    def add_outputs(self, timestamp: int, messages: dict) -> None:
        self._open()
        for name, message in messages.items():
            self.writer.write(self.outputs[name], timestamp, self.typestore.serialize_cdr(message, "sensor_msgs/msg/Image"))

    def close(self) -> None:
        self._open()
        self.writer.close()


def check_replaceable(output: Path, source: Path, force: bool) -> None:
    """The output rule, plus what `--force` may replace: only a rosbag2 folder (one with a
    metadata.yaml) that is neither the input nor a folder holding it."""
    check_output_path(output, force, inputs=(source,), folder=True)
    if output.exists():
        if source.resolve() == output.resolve() or source.resolve().is_relative_to(output.resolve()):
            raise UserError(f"output {output} holds the input bag {source}; choose another output path")
        if not (output / "metadata.yaml").is_file():
            raise UserError(f"output {output} exists and is not a rosbag2 folder (no metadata.yaml); it is not replaced")


def publish_folder(temp: Path, output: Path, aside: Path) -> None:
    """Rename `temp` to `output`; an existing output (checked replaceable) is moved to `aside`
    first and put back if the rename fails, so one of the two bags is always there."""
    if output.exists():
        output.rename(aside)
    try:
        temp.rename(output)
    except BaseException:
        if aside.exists():
            aside.rename(output)
        raise


def storage_name(reader) -> str:
    """'sqlite3' or 'mcap': the storage plugin an open rosbags Reader is using."""
    return next(name for name, plugin in reader.STORAGE_PLUGINS.items() if isinstance(reader.storage, plugin))


def open_input(source: Path, topic: str):
    """The opened reader of `source` and its connections on `topic`; a missing bag, topic or a
    topic of another type is a one-line error. Cheap: the CLI calls it before loading a model."""
    Reader, _, _, _ = import_rosbags()
    from rosbags.rosbag2 import ReaderError

    try:
        reader = Reader(source)
        reader.open()
    except (ReaderError, OSError) as exc:
        raise UserError(f"cannot read bag {source}: {exc}") from None
    inputs = [c for c in reader.connections if c.topic == topic]
    problem = None
    if not inputs:
        topics = ", ".join(sorted({c.topic for c in reader.connections})) or "none"
        problem = f"topic {topic} is not in {source.name}; its topics: {topics}"
    elif inputs[0].msgtype not in IMAGE_TYPES:
        problem = f"{topic} holds {inputs[0].msgtype}, not sensor_msgs/Image or CompressedImage"
    if problem:
        reader.close()
        raise UserError(problem)
    return reader, inputs


def check_bag_job(source: Path, output: Path, topic: str, force: bool) -> None:
    """Everything about a bag job that can be wrong, checked before any model is loaded."""
    check_replaceable(output, source, force)
    open_input(source, topic)[0].close()


def segment_bag(source: Path, output: Path, topic: str, segmenter: Segmenter, alpha: float = 0.5, force: bool = False,
                on_message: Callable[[int, int], None] | None = None) -> dict:
    """Copy `source` to `output` adding `/segment_node/{class_mask,color_mask,overlay}` for `topic`."""
    _, Writer, StoragePlugin, typestore = import_rosbags()

    check_replaceable(output, source, force)
    reader, inputs = open_input(source, topic)
    # A unique hidden folder beside the output holds the new bag under its final name, so its
    # files are named like the output's and one rename publishes it.
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial"))
    temp = staging / output.name
    try:
        storage = StoragePlugin.MCAP if storage_name(reader) == "mcap" else StoragePlugin.SQLITE3
        out = OutputBag(Writer(temp, version=9, storage_plugin=storage), reader.connections, typestore)
        core = SegmentationCore(segmenter, typestore.types["sensor_msgs/msg/Image"], "array", alpha)
        input_ids = {c.id for c in inputs}
        total = sum(c.msgcount for c in inputs)
        counts = {"images": 0, "skipped": 0}
        tail: list = []  # messages after the last image

        def frames() -> Iterator[Frame]:
            """Image messages as Frames, each carrying the raw messages up to and including it."""
            carried = []
            for connection, timestamp, raw in reader.messages():
                carried.append((connection.id, timestamp, raw))
                if connection.id not in input_ids:
                    continue
                message = typestore.deserialize_cdr(raw, connection.msgtype)
                try:
                    image = image_to_rgb(message)
                except UnsupportedImage:
                    counts["skipped"] += 1
                    continue  # stays in `carried`: copied, not segmented
                yield Frame(image, counts["images"], payload=(carried, message, timestamp))
                counts["images"] += 1
                carried = []
            tail.extend(carried)

        def sink(frame: Frame, class_map: np.ndarray) -> None:
            carried, message, timestamp = frame.payload
            out.copy(carried)
            out.add_outputs(timestamp, core.messages(message, frame.image, class_map))
            if on_message:
                on_message(frame.index + 1, total)

        def finish() -> None:
            out.copy(tail)
            out.close()

        stats = run_pipeline(frames(), segmenter, sink, on_end=finish)
        if stats.interrupted:
            raise KeyboardInterrupt
        publish_folder(temp, output, staging / ".replaced")
    finally:
        reader.close()
        shutil.rmtree(staging, ignore_errors=True)
    return {"input": str(source), "output": str(output), "topic": topic, "storage": storage.name.lower(), **counts, "copied": out.copied,
            "pipeline_fps": stats.fps, "model_fps": stats.model_fps, "stages": stats.stages}
