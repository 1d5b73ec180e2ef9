"""The GPU path's preprocessing, run through torch on the CPU, equals the CPU path's."""

import numpy as np
import pytest
import torch

from dwrseg_rt.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from dwrseg_rt.data.synth import Street
from dwrseg_rt.runtime.preprocess import (normalization_tensors, normalize, preprocess_tensor, resize_class_map,
                                          resize_class_map_tensor, resize_frame)

MEAN, STD = normalization_tensors(IMAGENET_MEAN, IMAGENET_STD, torch.device("cpu"))


@pytest.mark.parametrize("frame_size,size", [((1280, 720), (1024, 512)), ((640, 360), (1024, 512)), ((1024, 512), (1024, 512)), ((641, 479), (320, 256))])
def test_tensor_preprocess_matches_the_cpu_preprocess(frame_size, size):
    frame = Street(5, *frame_size).render(0.3)[0]
    cpu = normalize(resize_frame(frame, size)[None], IMAGENET_MEAN, IMAGENET_STD)
    device = preprocess_tensor(torch.from_numpy(frame)[None], size, MEAN, STD).numpy()
    assert device.shape == cpu.shape == (1, 3, size[1], size[0])
    levels = np.abs(device - cpu) * np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    assert levels.max() <= 1.01  # at most one gray level (OpenCV resizes in fixed point)
    assert levels.mean() < 0.2  # ~12% of values differ, by that one level


@pytest.mark.parametrize("shape,target", [((64, 128), (512, 1024)), ((512, 1024), (720, 1280)), ((50, 70), (33, 41))])
def test_tensor_class_map_resize_matches_opencv_nearest(shape, target):
    class_map = np.random.default_rng(0).integers(0, 19, shape, dtype=np.uint8)
    cpu = resize_class_map(class_map, *target)
    device = resize_class_map_tensor(torch.from_numpy(class_map)[None], *target)[0].numpy()
    assert device.dtype == cpu.dtype == np.uint8
    assert (device == cpu).mean() > 0.995  # identical but for rounding at a few cell borders


def test_resize_frame_compares_width_and_height_with_the_target():
    frame = Street(5, 256, 128).render(0.3)[0]
    assert resize_frame(frame, (256, 128)) is frame  # already the size: untouched
    assert resize_frame(frame, (256, 256)).shape == (256, 256, 3)  # same width, other height
    tiny = np.zeros((4, 5, 3), np.uint8)
    assert resize_frame(tiny, (3, 4)).shape == (4, 3, 3)


def test_tensor_preprocess_gives_the_requested_dtype_in_channels_last():
    frame = torch.from_numpy(Street(5, 320, 160).render(0.3)[0])[None]
    full = preprocess_tensor(frame, (256, 128), MEAN, STD)
    half = preprocess_tensor(frame, (256, 128), MEAN, STD, torch.float16)
    assert full.dtype == torch.float32 and half.dtype == torch.float16
    assert half.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(half.float(), full, atol=1e-2)


def test_normalize_hands_out_contiguous_nchw_memory():
    """Runtimes read this buffer by pointer as NCHW (TensorRT's calibrator): a transposed view
    of NHWC memory would give them channel-scrambled pixels."""
    frames = np.random.default_rng(1).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    batch = normalize(frames, IMAGENET_MEAN, IMAGENET_STD)
    assert batch.flags["C_CONTIGUOUS"] and batch.dtype == np.float32 and batch.shape == (2, 3, 5, 7)
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    plane = (frames[1, :, :, 2].astype(np.float32) - mean[2]) / std[2]  # frame 1, blue
    start = (1 * 3 + 2) * 5 * 7  # where an NCHW reader finds that plane
    assert np.allclose(np.frombuffer(batch.tobytes(), np.float32)[start : start + 35].reshape(5, 7), plane, atol=1e-5)


def test_tensor_preprocess_makes_no_host_copies_per_frame(monkeypatch):
    """The per-frame device path must not build tensors from host data (a pageable copy to the
    GPU waits for all queued work): the constants come in as tensors."""
    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was built from host data on the per-frame path")

    monkeypatch.setattr(torch, "as_tensor", refuse)
    monkeypatch.setattr(torch, "tensor", refuse)
    frame = torch.from_numpy(Street(5, 320, 160).render(0.3)[0])[None]
    assert preprocess_tensor(frame, (256, 128), MEAN, STD).shape == (1, 3, 128, 256)


def test_tensor_preprocess_can_hand_tensorrt_linear_nchw():
    frame = torch.from_numpy(Street(5, 320, 160).render(0.3)[0])[None]
    linear = preprocess_tensor(frame, (256, 128), MEAN, STD, channels_last=False)
    assert linear.is_contiguous() and torch.equal(linear, preprocess_tensor(frame, (256, 128), MEAN, STD))
