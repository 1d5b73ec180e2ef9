"""A benchmark clip from real road photos: each photo held for one second with a slow zoom.

No licensed dashcam footage lives in this project, so the CPU pipeline benchmark drives real
photos (CamVid's test images) through a moving virtual camera: real textures and sensor noise
for the decoder and encoder, smooth motion between frames like a driving camera's, and a
scene cut every second. Usage:

    python benchmarks/photo_clip.py CamVid/test out.mp4 --size 960x540 --fps 25 --seconds 12
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import cv2

from dwrseg_rt.io.video import VideoWriter


def zoomed(image, size: tuple[int, int], progress: float):
    """The centre crop of `image` at the output's aspect, zoomed in by up to 15% as `progress`
    goes 0 -> 1, resized to `size` (width, height)."""
    width, height = size
    h, w = image.shape[:2]
    crop_w = min(w, h * width / height) / (1 + 0.15 * progress)
    crop_h = crop_w * height / width
    x, y = (w - crop_w) / 2, (h - crop_h) * 0.6
    crop = image[int(y): int(y + crop_h), int(x): int(x + crop_w)]
    return cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg"))[:: 10][: args.seconds]
    writer = VideoWriter(args.output, Fraction(args.fps), *size, crf=18)
    for photo in photos:
        rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        for step in range(args.fps):
            writer.write(zoomed(rgb, size, step / args.fps))
    writer.close()
    print(f"wrote {args.output}: {len(photos) * args.fps} frames, {size[0]}x{size[1]} @ {args.fps} fps from {len(photos)} photos")


if __name__ == "__main__":
    main()
