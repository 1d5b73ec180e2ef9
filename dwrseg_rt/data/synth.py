"""A procedural street world with Cityscapes trainId labels.

It lets a machine with no dataset train, test and demo the whole product. A `Street` is a
3D world (road with a gentle curve, sidewalks, terrain, buildings, walls, fences, trees,
poles with signs and lights, cars, trucks, buses, pedestrians, cyclists and motorcyclists),
seen by a pinhole camera 1.5 m above the road. Objects are drawn far to near, the image and
its label map from the same polygons, so labels are exact; weather, light and texture vary
per scene. Moving objects have their own speed, so consecutive frames are coherent video.
`varied=True` is domain randomisation: each street also draws its own camera (height, field
of view, roll, lens distortion), exposure, white balance and ground colours (`Look`), so a
model trained on it has seen more than one robot's camera. Everything is a pure function of
the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dwrseg_rt.io.video import VideoWriter

# Cityscapes trainIds
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(11, 19)

CAMERA_HEIGHT = 1.5
NEAR = 2.5
FAR = 160.0

WEATHERS = {
    # name: (sky top, sky horizon, fog color, fog distance, light gain)
    "clear": ((60, 120, 200), (170, 200, 235), (190, 205, 220), 400.0, 1.0),
    "overcast": ((140, 145, 155), (195, 198, 205), (180, 182, 188), 220.0, 0.85),
    "fog": ((175, 178, 182), (200, 202, 205), (195, 197, 200), 60.0, 0.9),
    "rain": ((90, 95, 105), (140, 145, 150), (130, 135, 142), 120.0, 0.7),
    "dusk": ((50, 50, 110), (235, 150, 90), (170, 120, 110), 250.0, 0.65),
}


@dataclass(frozen=True)
class Look:
    """A street's camera and picture. The default is the fixed camera of the shipped models'
    training data; `draw` is domain randomisation, from an rng of its own, so a varied street
    keeps the layout of the plain street of the same seed."""

    height: float = CAMERA_HEIGHT  # metres above the road: a small robot 0.6, a car 1.5, a truck 2.6
    focal: float = 0.9  # x image width: 0.9 is a 58 degree horizontal field of view
    horizon: tuple[float, float] = (0.38, 0.5)  # range of the horizon's row, x image height (pitch)
    roll: float = 0.0  # degrees, clockwise
    distortion: float = 0.0  # radial: > 0 barrel (wide-angle dashcams), < 0 pincushion
    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    texture: float = 0.07  # amplitude of the coarse texture over every surface
    palette: int | None = None  # seed for ground colours beyond the default range; None: default

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Look:
        return cls(
            height=float(rng.uniform(0.6, 2.6)),
            focal=float(rng.uniform(0.45, 1.3)),  # 96 to 42 degrees
            horizon=(0.3, 0.6),
            roll=float(rng.uniform(-3.0, 3.0)),
            distortion=float(rng.choice([0.0, rng.uniform(0.0, 0.3), rng.uniform(-0.05, 0.0)], p=[0.4, 0.45, 0.15])),
            exposure=float(np.exp(rng.uniform(np.log(0.45), np.log(1.3)))),
            white_balance=tuple(float(g) for g in rng.uniform(0.85, 1.15, 3)),
            texture=float(rng.uniform(0.03, 0.16)),
            palette=int(rng.integers(1 << 31)),
        )

    @property
    def warps(self) -> bool:
        return bool(self.roll or self.distortion)

    def lens_maps(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps that roll the pinhole image and bend it radially, zoomed just enough
        that every output pixel comes from inside the drawing."""
        cx, cy = (width - 1) / 2, (height - 1) / 2
        half_diagonal = float(np.hypot(cx, cy))
        v, u = np.mgrid[0:height, 0:width].astype(np.float32)
        x, y = (u - cx) / half_diagonal, (v - cy) / half_diagonal
        bend = 1 + self.distortion * (x * x + y * y)
        angle = np.deg2rad(self.roll)
        xs = (np.cos(angle) * x - np.sin(angle) * y) * bend
        ys = (np.sin(angle) * x + np.cos(angle) * y) * bend
        zoom = min(cx / half_diagonal / np.abs(xs).max(), cy / half_diagonal / np.abs(ys).max(), 1.0)
        return (cx + xs * zoom * half_diagonal).astype(np.float32), (cy + ys * zoom * half_diagonal).astype(np.float32)


@dataclass
class Prop:
    """One object in the world: drawn by `kind` at lateral x, distance z (metres)."""

    kind: str
    x: float
    z: float
    color: tuple[int, int, int]
    size: tuple[float, ...] = ()
    speed: float = 0.0  # m/s along z
    lateral_speed: float = 0.0  # m/s along x
    phase: float = 0.0
    extra: dict = field(default_factory=dict)


class Camera:
    def __init__(self, width: int, height: int, horizon: float, curve: float, look: Look = Look()) -> None:
        self.width, self.height = width, height
        self.focal = look.focal * width
        self.elevation = look.height
        self.horizon = horizon * height
        self.curve = curve

    def road_x(self, z: np.ndarray | float) -> np.ndarray | float:
        """Lateral offset of the road centre at distance z (a gentle parabolic bend)."""
        return self.curve * np.square(z)

    def project(self, x, y, z) -> np.ndarray:
        """World (x right, y up, z forward) -> pixel coordinates (u, v)."""
        z = np.maximum(np.asarray(z, dtype=np.float64), 0.05)
        u = self.width / 2 + self.focal * (np.asarray(x) + self.road_x(z)) / z
        v = self.horizon + self.focal * (self.elevation - np.asarray(y)) / z
        return np.stack(np.broadcast_arrays(u, v), axis=-1)

    def scale(self, z: float) -> float:
        return self.focal / max(z, 0.05)


class Canvas:
    """An RGB image and its label map, always drawn together."""

    def __init__(self, width: int, height: int, fog: tuple, fog_distance: float, gain: float) -> None:
        self.image = np.zeros((height, width, 3), np.uint8)
        self.label = np.full((height, width), SKY, np.uint8)
        self.fog = np.asarray(fog, np.float64)
        self.fog_distance = fog_distance
        self.gain = gain

    def shade(self, color, z: float) -> tuple[int, int, int]:
        amount = 1.0 - np.exp(-z / self.fog_distance)
        rgb = np.asarray(color, np.float64) * self.gain * (1 - amount) + self.fog * amount
        return tuple(int(c) for c in np.clip(rgb, 0, 255))

    def polygon(self, points: np.ndarray, color, label: int, z: float) -> None:
        pts = np.round(points * 4).astype(np.int32).reshape(-1, 1, 2)  # 2 fractional bits
        cv2.fillPoly(self.image, [pts], self.shade(color, z), lineType=cv2.LINE_8, shift=2)
        cv2.fillPoly(self.label, [pts], label, lineType=cv2.LINE_8, shift=2)

    def ellipse(self, center, axes, color, label: int, z: float) -> None:
        c = (int(round(center[0])), int(round(center[1])))
        a = (max(1, int(round(axes[0]))), max(1, int(round(axes[1]))))
        cv2.ellipse(self.image, c, a, 0, 0, 360, self.shade(color, z), -1)
        cv2.ellipse(self.label, c, a, 0, 0, 360, label, -1)

    def line(self, p0, p1, thickness: float, color, label: int, z: float) -> None:
        t = max(1, int(round(thickness)))
        a, b = tuple(int(round(v)) for v in p0), tuple(int(round(v)) for v in p1)
        cv2.line(self.image, a, b, self.shade(color, z), t)
        cv2.line(self.label, a, b, label, t)


def jitter(rng: np.random.Generator, color, spread: int = 25) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in color)


def pick_color(rng: np.random.Generator, choices: list[tuple[int, int, int]], spread: int) -> tuple[int, int, int]:
    """One of a surface's typical colours, jittered: variety across kinds and within each."""
    return jitter(rng, tuple(int(c) for c in rng.choice(choices)), spread)


class Street:
    """One procedurally generated street; `render(t)` draws it at time t seconds."""

    def __init__(self, seed: int, width: int = 1024, height: int = 512, camera_speed: float = 10.0,
                 varied: bool = False) -> None:
        rng = np.random.default_rng(seed)
        self.rng_seed = seed
        self.width, self.height = width, height
        self.look = Look.draw(np.random.default_rng((seed, 0x100C))) if varied else Look()
        self.weather = str(rng.choice(list(WEATHERS)))
        horizon = rng.uniform(*self.look.horizon)
        self.camera = Camera(width, height, horizon=horizon, curve=rng.uniform(-0.0015, 0.0015), look=self.look)
        self.camera_speed = camera_speed
        self.lanes = int(rng.integers(1, 3))  # lanes per direction
        self.road_half = 3.3 * self.lanes + rng.uniform(0.0, 0.6)
        self.sidewalk = rng.uniform(2.0, 4.0)
        self.road_color = jitter(rng, (85, 85, 90), 15)
        self.sidewalk_color = jitter(rng, (165, 150, 140), 25)
        self.terrain_color = jitter(rng, (120, 140, 70), 25)
        if self.look.palette is not None:  # asphalt light to dark, concrete to red brick, green to dry
            palette = np.random.default_rng(self.look.palette)
            self.road_color = pick_color(palette, [(85, 85, 90), (55, 55, 60), (125, 122, 118)], 15)
            self.sidewalk_color = pick_color(palette, [(165, 150, 140), (150, 152, 155), (160, 90, 75)], 25)
            self.terrain_color = pick_color(palette, [(120, 140, 70), (150, 140, 90), (90, 110, 60)], 25)
        self.lens = self.look.lens_maps(width, height) if self.look.warps else None
        self.texture_seed = int(rng.integers(1 << 31))
        self.props: list[Prop] = []
        self.structures: list[Prop] = []
        for side in (-1, 1):
            self._populate_side(rng, side)
        self._populate_traffic(rng)

    # --- world generation ------------------------------------------------------------------
    def _populate_side(self, rng: np.random.Generator, side: int) -> None:
        edge = self.road_half + self.sidewalk
        urban = rng.random() < 0.8
        z = rng.uniform(-5, 10)
        while z < FAR + 200:
            length = rng.uniform(10, 35)
            if urban and rng.random() < 0.85:
                setback = rng.uniform(0.0, 4.0)
                color = pick_color(rng, [(150, 120, 100), (120, 120, 125), (180, 170, 150), (110, 80, 70), (200, 190, 170)], 20)
                self.structures.append(
                    Prop("building", side * (edge + setback), z, color, (length, rng.uniform(8, 30), setback))
                )
                if setback > 1.5 and rng.random() < 0.6:
                    kind = "wall" if rng.random() < 0.5 else "fence"
                    base = (150, 150, 165) if kind == "wall" else (140, 120, 100)
                    self.structures.append(Prop(kind, side * (edge + 0.3), z, jitter(rng, base, 20), (length, rng.uniform(0.8, 2.0))))
            z += length + rng.uniform(0.5, 6.0)
        # trees, hedges, poles with signs and lights, pedestrians; open ground shows as terrain
        z = rng.uniform(3, 12)
        while z < FAR + 200:
            roll = rng.random()
            x = side * (self.road_half + rng.uniform(0.4, 0.9))
            if roll < 0.35:
                self.props.append(Prop("tree", side * (self.road_half + self.sidewalk * rng.uniform(0.5, 0.9)), z,
                                       jitter(rng, (60, 110, 45), 25), (rng.uniform(4, 9), rng.uniform(1.5, 3.2))))
            elif roll < 0.55:
                self.props.append(Prop("pole", x, z, jitter(rng, (130, 130, 130), 20), (rng.uniform(4.5, 8.0),),
                                       extra={"sign": int(rng.integers(0, 3)), "light": bool(rng.random() < 0.35)}))
            elif roll < 0.7:
                self.props.append(Prop("hedge", side * (self.road_half + self.sidewalk - 0.6), z,
                                       jitter(rng, (55, 100, 40), 20), (rng.uniform(3, 10), rng.uniform(0.6, 1.4))))
            elif roll < 0.9:
                walk = rng.uniform(0.8, 1.6) * rng.choice([-1, 1])
                self.props.append(Prop("person", side * (self.road_half + rng.uniform(0.5, self.sidewalk - 0.3)), z,
                                       jitter(rng, tuple(int(c) for c in rng.integers(30, 220, 3)), 10),
                                       (rng.uniform(1.55, 1.9),), speed=walk, phase=rng.uniform(0, 6.28),
                                       extra={"legs": jitter(rng, (50, 50, 70), 30), "skin": jitter(rng, (200, 160, 130), 30)}))
            z += rng.uniform(2, 9)

    def _populate_traffic(self, rng: np.random.Generator) -> None:
        for lane in range(-self.lanes, self.lanes):
            x = (lane + 0.5) * 3.3 + rng.uniform(-0.3, 0.3)
            oncoming = lane < 0
            z = rng.uniform(6, 20)
            while z < FAR:
                roll = rng.random()
                speed = rng.uniform(-16, -8) if oncoming else rng.uniform(6, 14)
                if roll < 0.6:
                    self.props.append(Prop("car", x, z, jitter(rng, tuple(int(c) for c in rng.integers(20, 230, 3)), 10),
                                           (1.8, 1.45, 4.3), speed))
                elif roll < 0.72:
                    self.props.append(Prop("truck", x, z, jitter(rng, (200, 200, 195), 40), (2.4, 3.3, 7.5), speed))
                elif roll < 0.82:
                    self.props.append(Prop("bus", x, z, pick_color(rng, [(200, 40, 40), (230, 190, 40), (40, 90, 180)], 15),
                                           (2.5, 3.1, 12.0), speed))
                else:
                    kind = "bicycle" if rng.random() < 0.6 else "motorcycle"
                    rider_x = x + (rng.uniform(1.0, 1.4) * (-1 if oncoming else 1))
                    self.props.append(Prop(kind, rider_x, z, jitter(rng, (40, 40, 45), 30), (1.8,),
                                           speed * (0.5 if kind == "bicycle" else 0.9), phase=rng.uniform(0, 6.28),
                                           extra={"rider": jitter(rng, tuple(int(c) for c in rng.integers(30, 220, 3)), 10)}))
                z += rng.uniform(12, 45)

    # --- rendering -------------------------------------------------------------------------
    def render(self, t: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W, 3) uint8 RGB and label map (H, W) uint8 trainIds at time t."""
        top, horizon_color, fog, fog_distance, gain = WEATHERS[self.weather]
        canvas = Canvas(self.width, self.height, fog, fog_distance, gain)
        travelled = self.camera_speed * t
        self._draw_sky(canvas, top, horizon_color)
        self._draw_ground(canvas)
        for s in sorted(self.structures, key=lambda p: -(p.z - travelled)):
            self._draw(canvas, s, s.z - travelled, t)
        moving = []
        for p in self.props:
            z = p.z + p.speed * t - travelled
            moving.append((z, p))
        for z, p in sorted(moving, key=lambda item: -item[0]):
            if NEAR < z < FAR:
                self._draw(canvas, p, z, t)
        image, label = self._finish(canvas, t), canvas.label
        if self.lens is None:
            return image, label
        return (cv2.remap(image, *self.lens, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                cv2.remap(label, *self.lens, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE))

    def _draw_sky(self, canvas: Canvas, top, horizon_color) -> None:
        rows = np.linspace(0, 1, self.height)[:, None] * self.height / max(self.camera.horizon, 1)
        rows = np.clip(rows, 0, 1)
        sky = np.asarray(top)[None, :] * (1 - rows) + np.asarray(horizon_color)[None, :] * rows
        canvas.image[:] = sky[:, None, :].astype(np.uint8)

    def _strip(self, canvas: Canvas, x0: float, x1: float, color, label: int, z0: float = NEAR * 0.6, z1: float = FAR * 2) -> None:
        zs = np.geomspace(z0, z1, 24)
        for a, b in zip(zs[:-1], zs[1:]):
            pts = self.camera.project(np.array([x0, x1, x1, x0]), 0.0, np.array([a, a, b, b]))
            canvas.polygon(pts, color, label, (a + b) / 2)

    def _draw_ground(self, canvas: Canvas) -> None:
        far_edge = 400.0
        self._strip(canvas, -far_edge, far_edge, self.terrain_color, TERRAIN)
        edge = self.road_half + self.sidewalk
        for side in (-1, 1):
            self._strip(canvas, side * self.road_half, side * edge, self.sidewalk_color, SIDEWALK)
        self._strip(canvas, -self.road_half, self.road_half, self.road_color, ROAD)

    def _draw(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        getattr(self, f"_draw_{p.kind}")(canvas, p, z, t)

    def _box(self, canvas: Canvas, x: float, z: float, w: float, h: float, length: float, color, label: int, y0: float = 0.0) -> None:
        """An axis-aligned box: its rear face and the side face that faces the camera."""
        near, far = z, z + length
        side_x = x - w / 2 if x > 0 else x + w / 2
        side = self.camera.project(np.array([side_x] * 4), np.array([y0, y0 + h, y0 + h, y0]), np.array([near, near, far, far]))
        darker = tuple(int(c * 0.75) for c in color)
        canvas.polygon(side, darker, label, (near + far) / 2)
        roof = self.camera.project(np.array([x - w / 2, x + w / 2, x + w / 2, x - w / 2]), y0 + h, np.array([near, near, far, far]))
        if self.camera.elevation > y0 + h:
            canvas.polygon(roof, tuple(int(min(255, c * 1.1)) for c in color), label, near)
        rear = self.camera.project(np.array([x - w / 2, x + w / 2, x + w / 2, x - w / 2]), np.array([y0, y0, y0 + h, y0 + h]), near)
        canvas.polygon(rear, color, label, near)

    def _draw_building(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        length, height, _setback = p.size
        near, far = max(z, NEAR * 0.6), z + length
        if far <= NEAR * 0.6 or near > FAR * 1.5:
            return
        x = p.x
        face = self.camera.project(np.array([x] * 4), np.array([0, height, height, 0]), np.array([near, near, far, far]))
        canvas.polygon(face, p.color, BUILDING, (near + far) / 2)
        if z > NEAR:
            depth = 12.0 * np.sign(x)
            front = self.camera.project(np.array([x, x + depth, x + depth, x]), np.array([0, 0, height, height]), near)
            canvas.polygon(front, tuple(int(c * 0.85) for c in p.color), BUILDING, near)
        window = tuple(int(c * 0.45) for c in p.color)
        for wz in np.arange(near + 1.0, far - 1.0, 3.0):
            for wy in np.arange(3.0, height - 1.0, 3.2):
                pts = self.camera.project(np.array([x] * 4), np.array([wy, wy + 1.6, wy + 1.6, wy]), np.array([wz, wz, wz + 1.4, wz + 1.4]))
                canvas.polygon(pts, window, BUILDING, wz)

    def _draw_wall(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        length, height = p.size
        near, far = max(z, NEAR * 0.6), z + length
        if far > NEAR * 0.6:
            face = self.camera.project(np.array([p.x] * 4), np.array([0, height, height, 0]), np.array([near, near, far, far]))
            canvas.polygon(face, p.color, WALL, (near + far) / 2)

    def _draw_fence(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        length, height = p.size
        near, far = max(z, NEAR * 0.6), z + length
        if far <= NEAR * 0.6:
            return
        for y in (height * 0.35, height * 0.9):
            rail = self.camera.project(np.array([p.x] * 4), np.array([y - 0.08, y + 0.08, y + 0.08, y - 0.08]), np.array([near, near, far, far]))
            canvas.polygon(rail, p.color, FENCE, (near + far) / 2)
        for fz in np.arange(near, far, 1.2):
            post = self.camera.project(np.array([p.x] * 4), np.array([0, height, height, 0]), np.array([fz, fz, fz + 0.12, fz + 0.12]))
            canvas.polygon(post, p.color, FENCE, fz)

    def _draw_tree(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        height, radius = p.size
        s = self.camera.scale(z)
        (u0, v0), (u1, v1) = self.camera.project(np.array([p.x, p.x]), np.array([0.0, height - radius]), z)
        canvas.line((u0, v0), (u1, v1), 0.35 * s, (90, 70, 50), VEGETATION, z)
        cu, cv = self.camera.project(p.x, height - radius * 0.5, z)
        rng = np.random.default_rng(int(p.z * 1000) & 0xFFFF)
        for _ in range(5):
            du, dv = rng.uniform(-0.6, 0.6, 2) * radius * s
            canvas.ellipse((cu + du, cv + dv), (radius * s * rng.uniform(0.6, 0.9), radius * s * rng.uniform(0.5, 0.8)),
                           jitter(rng, p.color, 15), VEGETATION, z)

    def _draw_hedge(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        length, height = p.size
        self._box(canvas, p.x, max(z, NEAR), 0.8, height, length, p.color, VEGETATION)

    def _draw_pole(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        (height,) = p.size
        s = self.camera.scale(z)
        (u0, v0), (u1, v1) = self.camera.project(np.array([p.x, p.x]), np.array([0.0, height]), z)
        canvas.line((u0, v0), (u1, v1), 0.14 * s, p.color, POLE, z)
        sign = p.extra["sign"]
        if sign:
            cu, cv = self.camera.project(p.x, height * 0.62, z)
            if sign == 1:
                canvas.ellipse((cu, cv), (0.35 * s, 0.35 * s), (200, 30, 30), SIGN, z)
                canvas.ellipse((cu, cv), (0.25 * s, 0.25 * s), (235, 235, 235), SIGN, z)
            else:
                pts = np.array([[cu - 0.4 * s, cv - 0.3 * s], [cu + 0.4 * s, cv - 0.3 * s], [cu + 0.4 * s, cv + 0.3 * s], [cu - 0.4 * s, cv + 0.3 * s]])
                canvas.polygon(pts, (30, 80, 190), SIGN, z)
        if p.extra["light"]:
            cu, cv = self.camera.project(p.x, height - 0.6, z)
            box = np.array([[cu - 0.2 * s, cv - 0.5 * s], [cu + 0.2 * s, cv - 0.5 * s], [cu + 0.2 * s, cv + 0.5 * s], [cu - 0.2 * s, cv + 0.5 * s]])
            canvas.polygon(box, (40, 40, 30), LIGHT, z)
            lit = int((t * 0.2 + p.z) % 3)
            for i, lamp in enumerate([(230, 40, 30), (240, 190, 40), (40, 210, 90)]):
                color = lamp if i == lit else tuple(c // 4 for c in lamp)
                canvas.ellipse((cu, cv + (i - 1) * 0.32 * s), (0.12 * s, 0.12 * s), color, LIGHT, z)

    def _draw_car(self, canvas: Canvas, p: Prop, z: float, t: float, label: int = CAR) -> None:
        w, h, length = p.size
        self._box(canvas, p.x, z, w, h * 0.55, length, p.color, label, y0=0.25)
        cabin = tuple(int(c * 0.6) for c in p.color)
        self._box(canvas, p.x, z + length * 0.25, w * 0.85, h * 0.45, length * 0.5, cabin, label, y0=0.25 + h * 0.55)
        self._wheels(canvas, p.x, z, w * 0.35, 0.3, (0.22, 0.3), label)

    def _draw_truck(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        w, h, length = p.size
        self._box(canvas, p.x, z, w, h, length * 0.75, p.color, TRUCK, y0=0.4)
        self._box(canvas, p.x, z + length * 0.75, w, h * 0.8, length * 0.25, (60, 60, 70), TRUCK, y0=0.4)
        self._wheels(canvas, p.x, z, w * 0.38, 0.45, (0.3, 0.45), TRUCK)

    def _wheels(self, canvas: Canvas, x: float, z: float, offset: float, height: float, radii: tuple[float, float], label: int) -> None:
        """The two rear wheels of a vehicle, as dark ellipses (part of the vehicle's class)."""
        s = self.camera.scale(z)
        for dx in (-offset, offset):
            canvas.ellipse(self.camera.project(x + dx, height, z), (radii[0] * s, radii[1] * s), (25, 25, 25), label, z)

    def _draw_bus(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        w, h, length = p.size
        self._box(canvas, p.x, z, w, h, length, p.color, BUS, y0=0.3)
        s = self.camera.scale(z)
        cu, cv = self.camera.project(p.x, 0.3 + h * 0.62, z)
        pts = np.array([[cu - 0.45 * w * s, cv - 0.22 * h * s], [cu + 0.45 * w * s, cv - 0.22 * h * s],
                        [cu + 0.45 * w * s, cv + 0.12 * h * s], [cu - 0.45 * w * s, cv + 0.12 * h * s]])
        canvas.polygon(pts, (30, 40, 50), BUS, z)

    def _figure(self, canvas: Canvas, x: float, z: float, height: float, y0: float, color, legs_color, skin, label: int, stride: float) -> None:
        """A person: legs (swinging with `stride`), torso, arms and head."""
        s = self.camera.scale(z)
        hip = self.camera.project(x, y0 + height * 0.48, z)
        if y0 == 0.0:
            for sign in (-1, 1):
                foot = self.camera.project(x + sign * stride * 0.25, 0.0, z)
                canvas.line(hip, foot, 0.14 * s, legs_color, label, z)
        neck = self.camera.project(x, y0 + height * 0.82, z)
        canvas.line(hip, neck, 0.32 * s, color, label, z)
        for sign in (-1, 1):
            hand = self.camera.project(x + sign * 0.25, y0 + height * 0.5, z)
            canvas.line(self.camera.project(x + sign * 0.12, y0 + height * 0.8, z), hand, 0.09 * s, color, label, z)
        head = self.camera.project(x, y0 + height * 0.91, z)
        canvas.ellipse(head, (0.1 * s, 0.12 * s), skin, label, z)

    def _draw_person(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        stride = np.sin(p.phase + t * 6.0)
        self._figure(canvas, p.x, z, p.size[0], 0.0, p.color, p.extra["legs"], p.extra["skin"], PERSON, stride)

    def _draw_cycle(self, canvas: Canvas, p: Prop, z: float, label: int) -> None:
        s = self.camera.scale(z)
        radius = 0.33 if label == BICYCLE else 0.3
        thick = 0.05 if label == BICYCLE else 0.2
        for dz in (0.0, 1.0):
            cu, cv = self.camera.project(p.x, radius, z + dz)
            sc = self.camera.scale(z + dz)
            cv2_thick = max(1, int(round(thick * sc)))
            axes = (max(1, int(round(0.08 * sc))), max(1, int(round(radius * sc))))
            cv2.ellipse(canvas.image, (int(cu), int(cv)), axes, 0, 0, 360, canvas.shade((20, 20, 20), z), cv2_thick)
            cv2.ellipse(canvas.label, (int(cu), int(cv)), axes, 0, 0, 360, label, cv2_thick)
        a = self.camera.project(p.x, radius, z)
        b = self.camera.project(p.x, radius * 2.2, z + 0.5)
        canvas.line(a, b, (0.06 if label == BICYCLE else 0.3) * s, p.color, label, z)

    def _draw_bicycle(self, canvas: Canvas, p: Prop, z: float, t: float, label: int = BICYCLE) -> None:
        self._draw_cycle(canvas, p, z, label)
        self._figure(canvas, p.x, z + 0.4, p.size[0], 0.55, p.extra["rider"], (40, 40, 60), (200, 160, 130), RIDER, 0.0)

    def _draw_motorcycle(self, canvas: Canvas, p: Prop, z: float, t: float) -> None:
        self._draw_bicycle(canvas, p, z, t, MOTORCYCLE)

    def _finish(self, canvas: Canvas, t: float) -> np.ndarray:
        """Texture, lane marks, weather and sensor noise on the flat-shaded drawing."""
        image = canvas.image
        travelled = self.camera_speed * t
        mark = canvas.label == ROAD
        for lane in range(-self.lanes + 1, self.lanes):
            x = lane * 3.3
            dash = 6.0 if lane != 0 else 1e9
            start = -(travelled % 12.0) if lane != 0 else NEAR
            for z0 in np.arange(start, FAR, 12.0 if lane != 0 else 1e9):
                a, b = max(z0, NEAR * 0.6), min(z0 + dash, FAR)
                if b <= a:
                    continue
                pts = self.camera.project(np.array([x - 0.08, x + 0.08, x + 0.08, x - 0.08]), 0.0, np.array([a, a, b, b]))
                marks = np.zeros_like(canvas.label)
                cv2.fillPoly(marks, [np.round(pts).astype(np.int32)], 1)
                image[(marks == 1) & mark] = canvas.shade((225, 225, 215), (a + b) / 2)
        rng = np.random.default_rng(self.texture_seed)
        coarse = rng.normal(0.0, 1.0, (self.height // 32 + 1, self.width // 32 + 1)).astype(np.float32)
        coarse = cv2.resize(coarse, (self.width, self.height), interpolation=cv2.INTER_CUBIC)
        frame_rng = np.random.default_rng((self.texture_seed, int(t * 1000)))
        fine = frame_rng.normal(0.0, 5.0, image.shape[:2]).astype(np.float32)
        out = image.astype(np.float32) * (1.0 + self.look.texture * coarse[..., None]) + fine[..., None]
        if self.weather == "rain":
            streaks = np.zeros(image.shape[:2], np.float32)
            for _ in range(250):
                u, v = frame_rng.integers(0, self.width), frame_rng.integers(0, self.height)
                cv2.line(streaks, (int(u), int(v)), (int(u) + 3, int(v) + 18), 1.0, 1)
            out = out * (1 - 0.3 * streaks[..., None]) + 200 * 0.3 * streaks[..., None]
        if self.look.exposure != 1.0 or self.look.white_balance != (1.0, 1.0, 1.0):
            out = out * (self.look.exposure * np.asarray(self.look.white_balance, np.float32))
        out = cv2.GaussianBlur(np.clip(out, 0, 255), (3, 3), 0.7)
        return out.astype(np.uint8)


def derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def write_sample(root: Path, split: str, name: str, image: np.ndarray, label: np.ndarray) -> None:
    """One image and its trainId label in the Cityscapes folder layout."""
    image_dir = root / "leftImg8bit" / split / "synth"
    label_dir = root / "gtFine" / split / "synth"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image_dir / f"{name}_leftImg8bit.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(label_dir / f"{name}_gtFine_labelTrainIds.png"), label)


def generate(
    root: Path,
    seed: int = 0,
    train: int = 300,
    val: int = 60,
    clip_frames: int = 90,
    width: int = 1024,
    height: int = 512,
    fps: int = 30,
    on_progress: Callable[[], None] | None = None,
    varied: bool = False,
) -> list[Path]:
    """Write a train/val set (one random street and moment per image) and a drive clip.

    Train, val and clip draw their streets from disjoint seed streams, so val is unseen;
    `varied` gives every street its own camera and look (domain randomisation, `Look.draw`).
    Returns the files written for the clip (empty list when clip_frames is 0).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for split, count, stream in (("train", train, 0), ("val", val, 1)):
        for index in range(count):
            street = Street(derive_seed(seed, stream, index), width, height, varied=varied)
            t = np.random.default_rng((seed, stream, index)).uniform(0.0, 3.0)
            image, label = street.render(t)
            write_sample(root, split, f"synth_{seed:04d}_{index:06d}", image, label)
            if on_progress:
                on_progress()
    if not clip_frames:
        return []
    street = Street(derive_seed(seed, 2), width, height, varied=varied)
    clip = root / "drive.mp4"
    writer = VideoWriter(clip, Fraction(fps), width, height)
    try:
        for frame in range(clip_frames):
            writer.write(street.render(frame / fps)[0])
            if on_progress:
                on_progress()
    except BaseException:
        writer.close(commit=False)
        raise
    writer.close()
    return [clip]
