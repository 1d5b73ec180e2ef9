"""Nothing lost, nothing run: one regression test per fault a hostile run of every command found.

Each test names the cause it guards (the numbers of the issue's list) and fails if its fix is
reverted. Everything runs for real: real videos, bags, checkpoints, ONNX files and pickles.
"""

import json
import os
import pickle
import shutil
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import SMALL, one_line_failure, run_cli
from dwrseg_rt.checkpoint import FORMAT, ModelInfo, load_checkpoint, read_checkpoint
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.onnx import TORCHSCRIPT_EXPORT
from dwrseg_rt.io.outputs import atomic_write
from dwrseg_rt.io.video import VideoWriter, copy_stream
from media import make_video, probe


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if "partial" in p.name]


def street_png(path: Path, size=(96, 48)) -> Path:
    from dwrseg_rt.data.synth import Street

    cv2.imwrite(str(path), cv2.cvtColor(Street(5, *size).render(0.3)[0], cv2.COLOR_RGB2BGR))
    return path


# --- data loss and code execution -------------------------------------------------------------

def test_1_bag_force_replaces_only_a_rosbag2_folder_that_is_not_the_input_or_its_parent(checkpoint, tmp_path):
    pytest.importorskip("rosbags")
    from test_ros import write_bag
    from rosbags.rosbag2 import StoragePlugin

    holder = tmp_path / "drives"
    holder.mkdir()
    source = holder / "drive"
    write_bag(source, StoragePlugin.SQLITE3, False, frames=2)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    args = ("--topic", "/camera/image_raw", "--weights", checkpoint, "--size", "96x48", "--force")
    not_a_bag = run_cli("bag", source, precious, *args)
    assert one_line_failure(not_a_bag, "not a rosbag2 folder") and (precious / "notes.txt").read_text() == "keep me"
    parent = run_cli("bag", source, holder, *args)
    assert one_line_failure(parent, "holds the input bag") and (source / "metadata.yaml").is_file()
    itself = run_cli("bag", source, source, *args)
    assert itself.returncode != 0 and (source / "metadata.yaml").is_file()
    first = run_cli("bag", source, tmp_path / "out", *args)
    assert first.returncode == 0, first.stderr
    again = run_cli("bag", source, tmp_path / "out", *args)  # an earlier output bag may be replaced
    assert again.returncode == 0, again.stderr
    assert not leftovers(tmp_path)


def test_2_a_report_path_never_overwrites_an_input(checkpoint, tmp_path):
    source = make_video(tmp_path / "in.mp4", frames=3)
    before = source.read_bytes()
    result = run_cli("video", source, "--stats-json", source, "-o", tmp_path / "z.mp4", "--force", "--weights", checkpoint)
    assert one_line_failure(result, "is the input") and source.read_bytes() == before
    assert not (tmp_path / "z.mp4").exists()


def test_3_two_writers_of_one_output_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "same.mp4"
    writers = [VideoWriter(target, Fraction(10), 64, 48) for _ in range(2)]
    assert writers[0].temp != writers[1].temp
    for count, writer in zip((3, 5), writers):
        for _ in range(count):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert not target.exists()  # nothing under the final name until a file is complete
    writers[0].close()
    assert probe(target)["frames"] == 3
    writers[1].close()  # the later run's complete file replaces the earlier one, whole
    assert probe(target)["frames"] == 5 and not leftovers(tmp_path)


def test_4_batch_outputs_that_would_collide_are_refused_before_any_work(checkpoint, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    make_video(tmp_path / "a" / "clip.mp4", frames=2)
    make_video(tmp_path / "b" / "clip.mp4", frames=2)
    shutil.move(tmp_path / "b" / "clip.mp4", tmp_path / "b" / "clip.avi")
    both = run_cli("video", tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.avi", "-o", tmp_path / "out", "--force",
                   "--weights", checkpoint)
    assert one_line_failure(both, "would both write") and not (tmp_path / "out").exists()
    twice = run_cli("video", tmp_path / "a" / "clip.mp4", tmp_path / "a" / "clip.mp4", "-o", tmp_path / "out", "--weights", checkpoint)
    assert one_line_failure(twice, "given twice")


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/dwrseg-rt-pickle-ran")


@pytest.mark.parametrize("option", ["--resume", "--weights"])
def test_5_a_crafted_pickle_is_refused_and_never_run(option, synth_root, tmp_path):
    MARKER.unlink(missing_ok=True)
    crafted = tmp_path / "last.pt"
    crafted.write_bytes(pickle.dumps({"format": "dwrseg-rt-train/1", "payload": RunsCode()}))
    if option == "--resume":
        result = run_cli("train", "--dataset", "synth", "--data", synth_root, "-o", tmp_path / "m.pt", "--resume", crafted)
    else:
        result = run_cli("info", "--weights", crafted)
    assert result.returncode != 0 and "Traceback" not in result.stderr and "cannot read" in result.stderr
    assert not MARKER.exists()


def test_5_training_state_round_trips_with_weights_only(synth_root, tmp_path):
    from dwrseg_rt.train.trainer import TrainConfig, train

    config = TrainConfig(dataset="synth", data=synth_root, output=tmp_path / "m.pt", iterations=2, batch_size=2, crop=(64, 32),
                         workers=0, input_size=(64, 32), val_every=0)
    train(config)
    state = torch.load(config.run_dir / "last.pt", weights_only=True)  # raises if anything but tensors/plain data
    assert state["step"] == 2 and state["rng"]["numpy"]["keys"].numel() == 624


def test_6_existing_mask_pngs_need_force(checkpoint, tmp_path):
    image = street_png(tmp_path / "street.png")
    masks = tmp_path / "ids"
    masks.mkdir()
    (masks / "street.png").write_bytes(b"mine")
    result = run_cli("video", image, "-o", tmp_path / "out", "--masks-dir", masks, "--weights", checkpoint)
    assert one_line_failure(result, "--force") and (masks / "street.png").read_bytes() == b"mine"
    clip = make_video(tmp_path / "clip.mp4", frames=2)
    (masks / "clip_000000.png").write_bytes(b"mine too")
    video = run_cli("video", clip, "-o", tmp_path / "clip_out.mp4", "--masks-dir", masks, "--weights", checkpoint)
    assert one_line_failure(video, "--force") and (masks / "clip_000000.png").read_bytes() == b"mine too"
    forced = run_cli("video", clip, "-o", tmp_path / "clip_out.mp4", "--masks-dir", masks, "--weights", checkpoint, "--force")
    assert forced.returncode == 0, forced.stderr
    assert cv2.imread(str(masks / "clip_000000.png"), cv2.IMREAD_UNCHANGED).shape == (SMALL[1], SMALL[0])


def test_7_a_full_disk_while_finishing_a_video_leaves_no_temporary_and_no_output(tmp_path):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, Fraction(10), 64, 48)
    writer.write(np.zeros((48, 64, 3), np.uint8))

    class FullDisk:  # the muxer's last write (the index, on close) fails as on a full disk
        def __init__(self, real) -> None:
            self.real = real

        def __getattr__(self, name: str):
            return getattr(self.real, name)

        def close(self) -> None:
            self.real.close()
            raise OSError(28, "No space left on device")

    writer.container = FullDisk(writer.container)
    with pytest.raises(OSError):
        writer.close()
    assert not target.exists() and not leftovers(tmp_path)


def test_7_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")

    def fail_half_way(temp: Path) -> None:
        temp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, fail_half_way)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


# --- silent or wrong results ------------------------------------------------------------------

def test_8_unreadable_images_in_a_folder_are_named_and_the_exit_is_1(checkpoint, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    street_png(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    result = run_cli("video", folder, "-o", tmp_path / "out", "--weights", checkpoint)
    assert result.returncode == 1 and "broken.png" in result.stderr and "1 of 2 images" in result.stderr
    assert (tmp_path / "out" / "good_overlay.png").is_file()


def faststart_copy_cut(source: Path, target: Path, keep: float) -> Path:
    """The clip remuxed with its index first (as cameras and phones write), then cut short."""
    remuxed = target.with_suffix(".full.mp4")
    with av.open(str(source)) as src, av.open(str(remuxed), "w", options={"movflags": "faststart"}) as dst:
        stream = copy_stream(dst, src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    data = remuxed.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def test_9_a_truncated_video_gives_a_playable_file_a_warning_and_exit_1(checkpoint, tmp_path):
    cut = faststart_copy_cut(make_video(tmp_path / "clip.mp4", frames=12), tmp_path / "cut.mp4", 0.6)
    result = run_cli("video", cut, "-o", tmp_path / "out.mp4", "--weights", checkpoint)
    frames = probe(tmp_path / "out.mp4")["frames"]
    assert 0 < frames < 12
    assert result.returncode == 1 and f"{frames} of the 12 frames" in result.stderr and "truncated" in result.stderr


def test_10_one_image_to_a_png_path_writes_that_file(checkpoint, tmp_path):
    image = street_png(tmp_path / "one.png")
    result = run_cli("video", image, "-o", tmp_path / "out.png", "--weights", checkpoint)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.png").is_file() and cv2.imread(str(tmp_path / "out.png")).shape == (48, 96, 3)
    wrong = run_cli("video", image, "-o", tmp_path / "out.mp4", "--weights", checkpoint)
    assert one_line_failure(wrong, ".png file or a folder")


@pytest.mark.parametrize("content", [None, b"junk", pickle.dumps({"format": FORMAT})])
def test_11_info_exits_2_when_the_weights_are_missing_or_broken(content, tmp_path):
    weights = tmp_path / "w.pt"
    if content is not None:
        weights.write_bytes(content)
    result = run_cli("info", "--weights", weights)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
    assert "python" in result.stdout  # the versions are still printed for the bug report


def test_12_info_reads_an_export_and_export_refuses_one_clearly(checkpoint, tmp_path):
    onnx = tmp_path / "m.onnx"
    assert run_cli("export", "--weights", checkpoint, "-o", onnx).returncode == 0
    shown = run_cli("info", "--weights", onnx)
    assert shown.returncode == 0 and "19 classes" in shown.stdout, shown.stderr
    again = run_cli("export", "--weights", onnx, "-o", tmp_path / "again.onnx")
    assert one_line_failure(again, "already an export")


def test_13_a_bag_output_holds_no_file_named_like_temporary_data(checkpoint, tmp_path):
    pytest.importorskip("rosbags")
    from test_ros import write_bag
    from rosbags.rosbag2 import StoragePlugin

    write_bag(tmp_path / "drive", StoragePlugin.SQLITE3, False, frames=2)
    result = run_cli("bag", tmp_path / "drive", tmp_path / "out", "--topic", "/camera/image_raw", "--weights", checkpoint,
                     "--size", "96x48")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["metadata.yaml", "out.db3"]


# --- tracebacks and late errors ---------------------------------------------------------------

@pytest.mark.parametrize("change,phrase", [
    (lambda info: info.pop("classes"), "lacks classes"),
    (lambda info: info.update(input_size=[0, 0]), "input size 0x0"),
    (lambda info: info.update(input_size="big"), "malformed"),
    (lambda info: info.update(palette=[[1, 2, 3]]), "one RGB color"),
    (lambda info: info.update(variant="xl"), "variant 'xl'"),
    (lambda info: info.update(std=[0, 1, 1]), "positive std"),
])
def test_14_checkpoint_metadata_is_checked_field_by_field(change, phrase, checkpoint, tmp_path):
    payload = read_checkpoint(checkpoint)
    change(payload["info"])
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(UserError, match=phrase):
        load_checkpoint(tmp_path / "bad.pt")
    result = run_cli("video", make_video(tmp_path / "c.mp4", frames=1), "-o", tmp_path / "o.mp4", "--weights", tmp_path / "bad.pt")
    assert one_line_failure(result, phrase, code=2)


def test_14_unknown_extra_fields_from_a_newer_version_are_ignored(checkpoint, tmp_path):
    payload = read_checkpoint(checkpoint)
    payload["info"]["from_the_future"] = 1
    torch.save(payload, tmp_path / "newer.pt")
    assert load_checkpoint(tmp_path / "newer.pt")[1].num_classes == 19


def test_15_another_models_onnx_with_our_sidecar_is_refused_at_load(checkpoint, tmp_path):
    onnx = tmp_path / "m.onnx"
    assert run_cli("export", "--weights", checkpoint, "-o", onnx).returncode == 0

    class Other(torch.nn.Module):
        def forward(self, x):
            return x.mean(1)

    torch.onnx.export(Other(), (torch.zeros(1, 3, SMALL[1], SMALL[0]),), str(onnx), output_names=["scores"], **TORCHSCRIPT_EXPORT)
    result = run_cli("video", make_video(tmp_path / "c.mp4", frames=1), "-o", tmp_path / "o.mp4", "--weights", onnx,
                     "--backend", "onnxruntime")
    assert one_line_failure(result, "no class_map output")


@pytest.mark.parametrize("args,phrase", [
    (("--dataset", "imagenet"), "unknown dataset"),
    (("--variant", "xl"), "unknown variant"),
    (("--crop", "0x0"), "--crop"),
])
def test_16_bad_train_options_are_one_line(args, phrase, synth_root, tmp_path):
    result = run_cli("train", "--data", synth_root, "-o", tmp_path / "m.pt", *args)
    assert one_line_failure(result, phrase, code=2) and not list(tmp_path.iterdir())


def camvid_like(root: Path, count: int = 12) -> Path:
    for split in ("train", "trainannot"):
        (root / split).mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(root / "train" / f"f{index:02d}.png"), np.full((36, 48, 3), 60 + index, np.uint8))
        cv2.imwrite(str(root / "trainannot" / f"f{index:02d}.png"), np.full((36, 48), index % 11, np.uint8))
    return root


@pytest.mark.parametrize("fault,phrase", [("values", "CamVid ids are 0-10"), ("size", "label is 24x18")])
def test_17_a_bad_label_late_in_the_set_is_refused_before_training(fault, phrase, tmp_path):
    root = camvid_like(tmp_path / "camvid")
    bad = root / "trainannot" / "f10.png"
    cv2.imwrite(str(bad), np.full((36, 48), 40, np.uint8) if fault == "values" else np.zeros((18, 24), np.uint8))
    result = run_cli("train", "--dataset", "camvid", "--data", root, "-o", tmp_path / "m.pt", "--batch-size", "2",
                     "--iterations", "2", "--workers", "0")
    assert one_line_failure(result, phrase, code=2) and "f10.png" in result.stderr
    assert not (tmp_path / "m_run").exists() and not (tmp_path / "m.pt").exists()


def test_18_a_0x0_image_in_a_bag_is_skipped_and_the_rest_segmented(checkpoint, tmp_path):
    pytest.importorskip("rosbags")
    from test_ros import TYPES, Image, header, raw_image, street
    from rosbags.rosbag2 import Reader, Writer

    with Writer(tmp_path / "drive", version=9) as writer:
        camera = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=TYPES)
        empty = Image(header=header(0), height=0, width=0, encoding="rgb8", is_bigendian=0, step=0, data=np.zeros(0, np.uint8))
        for index, msg in enumerate([empty, raw_image(street(1), "rgb8", 0, 1)]):
            writer.write(camera, (index + 1) * 10**9, TYPES.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    result = run_cli("bag", tmp_path / "drive", tmp_path / "out", "--topic", "/camera/image_raw", "--weights", checkpoint,
                     "--size", "96x48")
    assert result.returncode == 0, result.stderr
    assert "1 images segmented" in result.stdout and "1 unusable" in result.stdout
    with Reader(tmp_path / "out") as reader:
        assert sum(1 for c, _, _ in reader.messages() if c.topic == "/segment_node/class_mask") == 1


@pytest.mark.parametrize("args", [("-t", "not a topic!!"), ("--namespace", "bad ns//"), ("-t", "/2fast/image")])
def test_19_ros_names_are_validated_before_any_dds(args):
    result = run_cli("ros-dds", *args, "--weights", "synth")
    assert one_line_failure(result, "not a valid ROS 2 name", code=2)


def test_20_a_report_path_that_is_a_folder_is_refused_before_the_work(checkpoint, tmp_path):
    (tmp_path / "report").mkdir()
    result = run_cli("eval", "--dataset", "camvid", "--data", tmp_path / "nowhere", "--weights", checkpoint,
                     "--json", tmp_path / "report", "--force")
    assert one_line_failure(result, "is a folder")  # before the dataset is even looked at


def test_21_a_damaged_export_cache_entry_is_exported_again(checkpoint, tmp_path):
    from dwrseg_rt.runtime.cache import export_cache_path

    clip = make_video(tmp_path / "c.mp4", frames=2)
    args = ("--weights", checkpoint, "--backend", "onnxruntime", "--force")
    assert run_cli("video", clip, "-o", tmp_path / "a.mp4", *args).returncode == 0
    entry = export_cache_path(checkpoint, SMALL)
    assert entry.parent.parent == Path(os.environ["DWRSEG_RT_CACHE"])
    entry.write_bytes(entry.read_bytes()[:1000])
    again = run_cli("video", clip, "-o", tmp_path / "b.mp4", *args)
    assert again.returncode == 0, again.stderr
    assert entry.stat().st_size > 10000 and probe(tmp_path / "b.mp4")["frames"] == 2


def test_22_version():
    from dwrseg_rt import __version__

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"dwrseg-rt {__version__}"


def test_sidecar_with_garbled_info_is_one_line(checkpoint, tmp_path):
    onnx = tmp_path / "m.onnx"
    assert run_cli("export", "--weights", checkpoint, "-o", onnx).returncode == 0
    sidecar = onnx.with_name("m.onnx.json")
    data = json.loads(sidecar.read_text())
    data["info"]["input_size"] = [0, 0]
    sidecar.write_text(json.dumps(data))
    result = run_cli("info", "--weights", onnx)
    assert result.returncode == 2 and "input size 0x0" in result.stderr
    with pytest.raises(UserError):
        ModelInfo.from_dict(None)


def _png(path: Path) -> None:
    from dwrseg_rt.jobs.segment import write_png

    write_png(path, np.zeros((8, 8), np.uint8))


def _checkpoint(path: Path, checkpoint: Path) -> None:
    from dwrseg_rt.checkpoint import save_checkpoint

    model, info = load_checkpoint(checkpoint)
    save_checkpoint(path, model, info)


def _json(path: Path) -> None:
    from dwrseg_rt.cli import write_json

    write_json(path, {"a": 1})


def _onnx(path: Path, checkpoint: Path) -> None:
    from dwrseg_rt.export.onnx import export_onnx

    model, info = load_checkpoint(checkpoint)
    export_onnx(model, info, path, (64, 32), check=False)


@pytest.mark.parametrize("name,write", [("mask.png", lambda p, c: _png(p)), ("model.pt", _checkpoint),
                                        ("report.json", lambda p, c: _json(p)), ("model.onnx", _onnx)])
@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_every_writer_keeps_the_old_file_and_leaves_no_temporary_when_interrupted(name, write, failure, checkpoint, tmp_path,
                                                                                  monkeypatch):
    """The failure strikes after the new content is complete but before it is published: the last
    moment at which a non-atomic writer would already have clobbered the old file."""
    import dwrseg_rt.io.outputs as outputs

    target = tmp_path / name
    target.write_bytes(b"the old file")

    def fail(temp: Path, path: Path) -> None:
        assert temp.stat().st_size > 0 and temp != path  # written in full, elsewhere
        raise failure

    monkeypatch.setattr(outputs, "publish", fail)
    with pytest.raises(type(failure)):
        write(target, checkpoint)
    assert target.read_bytes() == b"the old file" and sorted(tmp_path.iterdir()) == [target]


def test_the_test_session_caches_exports_in_its_own_folder():
    """Set before session- and module-scoped fixtures export anything (conftest's pytest_configure)."""
    from dwrseg_rt.runtime.cache import cache_dir

    assert cache_dir() != Path.home() / ".cache" / "dwrseg-rt"
    assert cache_dir().name.startswith("dwrseg-rt-test-cache-")
