"""The frame pipeline with a real (small) model: order, back-pressure, errors, interrupts."""

import os
import signal
import time

import numpy as np
import pytest

from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.io.sources import Frame
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.pipeline import run_pipeline
from dwrseg_rt.runtime.segmenter import Segmenter


@pytest.fixture
def segmenter(checkpoint):
    model, info = load_checkpoint(checkpoint)
    return Segmenter(TorchBackend(model), info, (64, 32))


def numbered_frames(count):
    for index in range(count):
        yield Frame(np.full((40, 70, 3), index % 256, np.uint8), index)


def test_every_frame_arrives_once_in_order(segmenter):
    seen = []
    stats = run_pipeline(numbered_frames(25), segmenter, lambda frame, class_map: seen.append((int(frame.index), class_map.shape)))
    assert [index for index, _ in seen] == list(range(25))
    assert all(shape == (40, 70) for _, shape in seen)
    assert stats.frames == 25 and not stats.interrupted
    assert stats.stages["inference"]["count"] == 25


def test_decoder_does_not_run_far_ahead_of_a_slow_sink(segmenter):
    produced = []

    def frames():
        for frame in numbered_frames(40):
            produced.append(int(frame.index))
            yield frame

    consumed = []
    lead = []

    def slow_sink(frame, class_map):
        time.sleep(0.01)
        consumed.append(1)
        lead.append(len(produced) - len(consumed))

    run_pipeline(frames(), segmenter, slow_sink, depth=3)
    assert max(lead) <= 3 + 3 + 2  # both queues plus the frames in hand


def test_a_decode_error_is_raised_to_the_caller(segmenter):
    def broken():
        yield from numbered_frames(3)
        raise ValueError("bad packet")

    with pytest.raises(ValueError, match="bad packet"):
        run_pipeline(broken(), segmenter, lambda f, m: None)


def test_a_sink_error_stops_the_run(segmenter):
    def sink(frame, class_map):
        if frame.index == 2:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_pipeline(numbered_frames(100), segmenter, sink)


def test_ctrl_c_returns_the_frames_segmented_so_far(segmenter):
    seen = []

    def sink(frame, class_map):
        seen.append(int(frame.index))
        if len(seen) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl+C delivers, to the main thread

    stats = run_pipeline(numbered_frames(1000), segmenter, sink)
    assert stats.interrupted
    assert 5 <= stats.frames < 1000
    assert seen == list(range(len(seen)))  # no gaps, no reordering
