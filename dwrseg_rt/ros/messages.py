"""sensor_msgs/Image and CompressedImage <-> numpy, for any object with the ROS fields.

rclpy messages, rosbags dataclasses and CycloneDDS IdlStructs all qualify: reading uses the
attributes, writing calls the message class with keyword arguments. Headers are passed
through untouched, so outputs carry the camera's stamp and frame_id.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

from dwrseg_rt.errors import UserError

# Bytes per pixel of each encoding (sensor_msgs/image_encodings), and its conversion to RGB.
# USB cameras send YUV 4:2:2 (ROS's yuv422 is UYVY; yuv422_yuy2 is YUYV), machine-vision
# cameras their raw Bayer mosaic: bayer_rggb8 starts its first row R G, its second G B (OpenCV
# names a pattern by a later 2x2 block: rggb is its BayerBG, as in cv_bridge).
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3, "yuv422": 2, "yuv422_yuy2": 2,
            "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1, "bayer_grbg8": 1}
TO_RGB = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB, "bgra8": cv2.COLOR_BGRA2RGB, "mono8": cv2.COLOR_GRAY2RGB,
          "8UC1": cv2.COLOR_GRAY2RGB, "yuv422": cv2.COLOR_YUV2RGB_UYVY, "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2,
          "bayer_rggb8": cv2.COLOR_BayerBG2RGB, "bayer_bggr8": cv2.COLOR_BayerRG2RGB, "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
          "bayer_grbg8": cv2.COLOR_BayerGB2RGB}


class UnsupportedImage(UserError):
    """An input message this node cannot turn into an RGB frame (it skips it and goes on)."""


def as_bytes(data: Any) -> np.ndarray:
    """The `data` field as a flat uint8 array, whatever container the ROS layer used."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, np.uint8)
    return np.asarray(data, np.uint8)


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, "format")  # CompressedImage's field; Image has `encoding` instead


def image_to_rgb(msg: Any) -> np.ndarray:
    """Image (any of CHANNELS; rows padded to `step`) or CompressedImage (jpeg, png) ->
    (H, W, 3) uint8 RGB."""
    data = as_bytes(msg.data)
    if is_compressed(msg):
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if decoded is None:
            raise UnsupportedImage(f"cannot decode CompressedImage of format {msg.format!r} (jpeg and png are supported)")
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    encoding = msg.encoding
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise UnsupportedImage(f"unsupported image encoding {encoding!r}; use one of {', '.join(CHANNELS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise UnsupportedImage(f"{encoding} image of size {width}x{height} holds no pixels")
    if encoding.startswith(("yuv422", "bayer")) and (width % 2 or encoding.startswith("bayer") and height % 2):
        raise UnsupportedImage(f"{encoding} image of size {width}x{height}: its pixels come in pairs, so its sides must be even")
    if step < width * channels or data.size < step * height:
        raise UnsupportedImage(f"{encoding} image {width}x{height} with step {step} has {data.size} bytes of data")
    rows = data[: step * height].reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)  # (H, W, 1) for mono: cvtColor takes it
    if encoding in TO_RGB:
        return cv2.cvtColor(pixels, TO_RGB[encoding])
    return np.ascontiguousarray(pixels)


def make_image(image_class: type, header: Any, pixels: np.ndarray, encoding: str, data_as: str) -> Any:
    """A sensor_msgs/Image of `image_class` holding `pixels` (mono8: HxW, rgb8: HxWx3).

    `data_as` says what the class wants in `data`: "array" (rosbags), "bytes" (CycloneDDS),
    "array.array" (rclpy: its fast path; a bytes value is checked element by element).
    """
    pixels = np.ascontiguousarray(pixels, np.uint8)  # class maps may come as int32 (TensorRT)
    height, width = pixels.shape[:2]
    flat = pixels.reshape(-1)
    data = {"array": lambda: flat, "bytes": flat.tobytes, "array.array": lambda: array.array("B", flat.tobytes())}[data_as]()
    return image_class(header=header, height=height, width=width, encoding=encoding, is_bigendian=0, step=pixels.strides[0], data=data)
