"""Bounded fuzzing of what arrives from outside: ROS image messages, video container bytes,
checkpoint and sidecar metadata. Every case must end in a result or a one-line UserError:
never another exception, never a hang. Derandomized, so CI runs the same 1,090 cases each time
(400 Image + 200 CompressedImage + 60 video + 300 metadata + 130 sidecar).
"""

import json
import signal
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwrseg_rt.checkpoint import ModelInfo, read_sidecar
from dwrseg_rt.data.labels import CAMVID
from dwrseg_rt.errors import UserError
from dwrseg_rt.io.video import VideoReader
from dwrseg_rt.ros.messages import CHANNELS, image_to_rgb
from media import make_video

def fuzz(cases: int) -> settings:
    return settings(max_examples=cases, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextmanager
def no_hang(seconds: int):
    """Fail the case, rather than the whole run, if it takes longer than `seconds`."""
    def expire(signum, frame):
        raise TimeoutError(f"hung for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def converts_or_refuses(msg) -> None:
    try:
        rgb = image_to_rgb(msg)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.shape[0] > 0 and rgb.shape[1] > 0


@fuzz(400)
@given(height=st.integers(-2, 40), width=st.integers(-2, 40), step=st.integers(-4, 200),
       encoding=st.sampled_from([*CHANNELS, "16UC1", "32FC1", "", "rgb8 "]), data=st.binary(max_size=5000),
       container=st.sampled_from(["bytes", "array", "list"]))
def test_raw_image_fields(height, width, step, encoding, data, container):
    payload = {"bytes": data, "array": np.frombuffer(data, np.uint8), "list": list(data)}[container]
    converts_or_refuses(SimpleNamespace(header=None, height=height, width=width, step=step, encoding=encoding, is_bigendian=0,
                                        data=payload))


def valid_compressed(kind: str) -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(f".{kind}", image)[1].tobytes()


@fuzz(200)
@given(kind=st.sampled_from(["png", "jpg"]), cut=st.integers(0, 2000),
       flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
       declared=st.sampled_from(["jpeg", "png", "tiff", ""]))
def test_compressed_image_bytes(kind, cut, flips, declared):
    data = bytearray(valid_compressed(kind))
    for position, value in flips:
        data[position % len(data)] = value
    converts_or_refuses(SimpleNamespace(header=None, format=declared, data=bytes(data[: len(data) - cut])))


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> bytes:
    return make_video(tmp_path_factory.mktemp("fuzz") / "v.mp4", frames=6, size=(64, 48)).read_bytes()


@fuzz(60)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=12),
       keep=st.floats(0.05, 1.0))
def test_video_container_bytes(small_video, flips, keep, tmp_path_factory):
    data = bytearray(small_video)
    for where, value in flips:
        data[int(where * len(data))] = value
    path = tmp_path_factory.mktemp("case") / "mutated.mp4"
    path.write_bytes(bytes(data[: max(1, int(len(data) * keep))]))
    with no_hang(20):
        try:
            with VideoReader(path) as reader:
                frames = list(reader)
        except UserError as exc:
            assert "\n" not in str(exc)
            return
    assert all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 for f in frames)


JUNK = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=12)
VALID = ModelInfo.for_labels("b", CAMVID, input_size=(480, 360)).to_dict()


@fuzz(300)
@given(replaced=st.dictionaries(st.sampled_from([*VALID, "extra"]), JUNK, max_size=4),
       dropped=st.sets(st.sampled_from(list(VALID)), max_size=3))
def test_checkpoint_metadata(replaced, dropped):
    data = {k: v for k, v in {**VALID, **replaced}.items() if k not in dropped}
    try:
        info = ModelInfo.from_dict(data, "fuzz.pt")
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert len(info.palette) == info.num_classes > 0 and min(info.input_size) >= 16 and min(info.std) > 0


@fuzz(130)
@given(document=JUNK | st.fixed_dictionaries({"format": st.just("dwrseg-rt/1"), "info": JUNK}) | st.text(max_size=40).map(lambda t: {"raw": t}))
def test_sidecar_json(document, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sidecar")
    model = folder / "m.onnx"
    model.write_bytes(b"")
    text = document["raw"] if isinstance(document, dict) and set(document) == {"raw"} else json.dumps(document)
    Path(f"{model}.json").write_text(text)
    try:
        info, _ = read_sidecar(model)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert info.num_classes > 0
