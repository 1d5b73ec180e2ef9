"""Issue 22: nothing a command reads is ever written over, --force or not, and the cheap checks
come before the expensive work. Each case runs the real CLI on real files and checks that the
input's bytes are unchanged and the refusal is one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SMALL, one_line_failure, run_cli
from dwrseg_rt.errors import UserError
from media import make_video
from test_safety import camvid_like


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frames_folder(folder: Path, count: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        cv2.imwrite(str(folder / f"f{index:02d}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return folder


@pytest.fixture
def weights(checkpoint, tmp_path) -> Path:
    mine = tmp_path / "my.pt"
    shutil.copyfile(checkpoint, mine)
    return mine


def cases(tmp_path: Path, weights: Path):
    """(command line, the input it must not write over) for every command and kind of input."""
    clip = make_video(tmp_path / "clip.mp4", frames=2, size=SMALL)
    camvid = camvid_like(tmp_path / "camvid")
    (camvid / "test").symlink_to(camvid / "train")
    (camvid / "testannot").symlink_to(camvid / "trainannot")
    calibration = frames_folder(tmp_path / "calib")
    class_map = tmp_path / "map.json"
    class_map.write_text(json.dumps({"road": "road", "car": "car"}))
    label = camvid / "trainannot" / "f03.png"
    image = camvid / "train" / "f04.png"
    eval_args = ("eval", "--dataset", "camvid", "--data", camvid, "--split", "test", "--weights", weights, "--size", "64x48")
    return [
        (("bench", "-w", weights, "--iterations", "1", "--json", weights), weights),
        (("bench", "-w", weights, "-p", "int8", "-b", "onnxruntime", "--calibration", calibration, "--iterations", "1",
          "--json", calibration / "f02.png"), calibration / "f02.png"),
        (("export", "-w", weights, "-o", weights.with_suffix(".onnx"), "--size", "64x48"), None),  # a fresh name: allowed
        (("export", "-w", weights, "-o", tmp_path / "m.onnx", "-p", "int8", "--calibration", calibration, "--size", "64x48"), None),
        ((*eval_args, "--json", weights), weights),
        ((*eval_args, "--json", class_map, "--class-map", class_map, "--drop-unmapped"), class_map),
        ((*eval_args, "--json", label), label),
        (("video", clip, "-o", tmp_path / "o.mp4", "-w", weights, "--size", "64x48", "--stats-json", weights), weights),
        (("train", "--dataset", "camvid", "--data", camvid, "-o", image.with_suffix(".pt"), "--iterations", "1"), None),
        (("train", "--dataset", "camvid", "--data", camvid, "--init", weights, "-o", weights, "--iterations", "1"), weights),
    ]


def test_force_never_writes_over_an_input_of_any_command(weights, tmp_path):
    for args, protected in cases(tmp_path, weights):
        if protected is None:
            continue
        before = digest(protected)
        result = run_cli(*args, "--force")
        assert one_line_failure(result, "input"), (args, result.stderr)
        assert "choose another" in result.stderr
        assert digest(protected) == before, args


def test_masks_are_never_written_over_the_input_images(checkpoint, tmp_path):
    images = frames_folder(tmp_path / "imgs", count=2)
    before = {p.name: digest(p) for p in images.iterdir()}
    result = run_cli("video", images, "-o", tmp_path / "out", "--masks-dir", images, "-w", checkpoint, "--force")
    assert one_line_failure(result, "masks would be written over inputs")
    assert {p.name: digest(p) for p in images.iterdir()} == before


def test_resume_without_o_leaves_another_checkpoint_alone_and_writes_into_the_resumed_folder(synth_root, tmp_path):
    first = run_cli("train", "--dataset", "synth", "--data", synth_root, "-o", tmp_path / "run.pt", "--iterations", "2",
                    "--batch-size", "2", "--crop", "128x64", "--input-size", "128x64", "--val-every", "0", "--workers", "0")
    assert first.returncode == 0, first.stderr
    mine = tmp_path / "dwrseg.pt"
    shutil.copyfile(tmp_path / "run.pt", mine)
    before = digest(mine)
    os.chdir(tmp_path)  # -o defaults to ./dwrseg.pt
    try:
        resumed = run_cli("train", "--dataset", "synth", "--data", synth_root, "--resume", tmp_path / "run_run", "--iterations", "3",
                          "--batch-size", "2", "--crop", "128x64", "--input-size", "128x64", "--val-every", "0", "--workers", "0",
                          cwd=tmp_path)
    finally:
        os.chdir(Path(__file__).parent)
    assert one_line_failure(resumed, "exists; pass --force"), resumed.stderr
    assert digest(mine) == before and not (tmp_path / "dwrseg_run").exists()


def test_a_run_folder_holding_another_run_is_refused_and_resume_honours_iterations(synth_root, tmp_path):
    common = ("--dataset", "synth", "--data", synth_root, "--batch-size", "2", "--crop", "128x64", "--input-size", "128x64",
              "--val-every", "0", "--workers", "0")
    assert run_cli("train", *common, "-o", tmp_path / "a.pt", "--iterations", "2").returncode == 0
    log = (tmp_path / "a_run" / "log.csv").read_text()
    other = run_cli("train", *common, "-o", tmp_path / "b.pt", "--run-dir", tmp_path / "a_run", "--iterations", "2")
    assert one_line_failure(other, "holds another run") and (tmp_path / "a_run" / "log.csv").read_text() == log
    longer = run_cli("train", *common, "-o", tmp_path / "a2.pt", "--resume", tmp_path / "a_run", "--iterations", "4")
    assert longer.returncode == 0, longer.stderr
    assert "--iterations 4 replaces the run's planned 2 steps" in longer.stderr
    steps = [line.split(",")[0] for line in (tmp_path / "a_run" / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4"]  # continued in the resumed folder, to the new total
    done = run_cli("train", *common, "-o", tmp_path / "a3.pt", "--resume", tmp_path / "a_run", "--iterations", "4")
    assert one_line_failure(done, "leaves nothing to do")


def test_eval_refuses_label_ids_outside_the_classes_as_train_does(checkpoint, tmp_path):
    root = camvid_like(tmp_path / "camvid")
    cv2.imwrite(str(root / "trainannot" / "f05.png"), np.full((36, 48), 31, np.uint8))  # another release's ids
    result = run_cli("eval", "--dataset", "camvid", "--data", root, "--split", "train", "--weights", checkpoint)
    assert one_line_failure(result, "CamVid ids are 0-10")


def test_the_int8_cache_key_holds_the_quantization_recipe(checkpoint, monkeypatch, tmp_path):
    import dwrseg_rt.export.quantize as quantize
    from dwrseg_rt.checkpoint import load_checkpoint
    from dwrseg_rt.runtime.backends import cached_int8, cached_onnx

    model, info = load_checkpoint(checkpoint)
    fp32 = cached_onnx(checkpoint, model, info, (64, 32))
    first = cached_int8(fp32.path, info, (64, 32), None).path
    monkeypatch.setattr(quantize, "RECIPE_REVISION", quantize.RECIPE_REVISION + 1)
    second = cached_int8(fp32.path, info, (64, 32), None).path
    assert first != second and first.is_file() and second.is_file()


def crc_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the data is one tiny row): a decompression bomb."""
    ok, encoded = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def test_calibration_survives_bombs_fifos_and_huge_photos(tmp_path):
    from dwrseg_rt.checkpoint import ModelInfo
    from dwrseg_rt.data.labels import CAMVID
    from dwrseg_rt.export.calibration import calibration_batches, calibration_images, read_for_size

    folder = frames_folder(tmp_path / "calib")
    os.mkfifo(folder / "pipe.png")  # opening it would block forever
    found = []
    lister = threading.Thread(target=lambda: found.extend(calibration_images(folder, 64)), daemon=True)
    lister.start()
    lister.join(timeout=30)
    assert not lister.is_alive() and len(found) == 8 and all(p.name != "pipe.png" for p in found)
    (folder / "bomb.png").write_bytes(crc_png(60000, 60000))
    info = ModelInfo.for_labels("b", CAMVID, input_size=(48, 32))
    with pytest.raises(UserError, match="bomb.png"):
        batches = calibration_batches(calibration_images(folder, 64), info, (48, 32))
        [batches[i] for i in range(len(batches))]
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    reads = []
    original = cv2.imread
    cv2.imread = lambda path, flag=cv2.IMREAD_COLOR: (reads.append(flag), original(path, flag))[1]
    try:
        frame = read_for_size(photo, (480, 360))
    finally:
        cv2.imread = original
    assert frame.shape == (360, 480, 3) and reads == [cv2.IMREAD_REDUCED_COLOR_8]  # 500x375 decoded, not 12 MP


def test_int8_on_a_foreign_onnx_is_refused_before_quantizing(checkpoint, tmp_path):
    import torch

    from dwrseg_rt.checkpoint import load_checkpoint, write_sidecar
    from dwrseg_rt.export.onnx import TORCHSCRIPT_EXPORT

    onnx = tmp_path / "other.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 2, 1), (torch.zeros(1, 3, 32, 64),), str(onnx), output_names=["scores"], **TORCHSCRIPT_EXPORT)
    write_sidecar(onnx, load_checkpoint(checkpoint)[1], inference_size=[64, 32])
    result = run_cli("video", make_video(tmp_path / "c.mp4", frames=1), "-o", tmp_path / "o.mp4", "-w", onnx,
                     "-b", "onnxruntime", "-p", "int8")
    assert one_line_failure(result, "no class_map output")


def test_weights_names_folders_and_upper_case_suffixes(checkpoint, tmp_path):
    (tmp_path / "synth").mkdir()  # a folder named like the shipped model does not shadow it
    from dwrseg_rt.checkpoint import SHIPPED_WEIGHTS, resolve_weights

    os.chdir(tmp_path)
    try:
        assert resolve_weights("synth") == SHIPPED_WEIGHTS["synth"]
        with pytest.raises(UserError, match="is a folder"):
            resolve_weights(tmp_path / "synth")
    finally:
        os.chdir(Path(__file__).parent)
    upper = tmp_path / "m.ONNX"
    assert run_cli("export", "-w", checkpoint, "-o", tmp_path / "m.onnx", "--size", "64x32").returncode == 0
    shutil.copyfile(tmp_path / "m.onnx", upper)
    shutil.copyfile(tmp_path / "m.onnx.json", tmp_path / "m.ONNX.json")
    result = run_cli("video", make_video(tmp_path / "c.mp4", frames=1, size=(64, 32)), "-o", tmp_path / "o.mp4", "-w", upper)
    assert result.returncode == 0, result.stderr  # run as an ONNX model, never unpickled


@pytest.mark.parametrize("args,phrase", [
    (("export", "--format", "onnx", "-o", "x.engine"), "must end in .onnx"),
    (("export", "--format", "onnx", "-p", "fp32", "--calibration", "nowhere"), "used only with --precision int8"),
    (("train", "--dataset", "synth", "--data", ".", "-o", "x.onnx"), "must end in .pt"),
    (("ros-dds", "--reliability", "reliabel"), "--reliability must be"),
    (("bench", "-b", "onnxruntime", "-p", "int8", "--calibration", "nowhere"), "not a folder of images"),
])
def test_cheap_mistakes_are_reported_before_any_work(args, phrase, checkpoint, tmp_path):
    result = run_cli(*args, *(("-w", checkpoint) if args[0] not in ("train",) else ()), cwd=tmp_path)
    assert one_line_failure(result, phrase), result.stderr
    assert not [p for p in tmp_path.iterdir()]


def test_a_bag_topic_typo_is_reported_before_the_model_loads(tmp_path):
    from rosbags.rosbag2 import StoragePlugin

    from test_ros import write_bag

    bag = tmp_path / "in"
    write_bag(bag, StoragePlugin.SQLITE3, False, frames=1)
    result = run_cli("bag", bag, tmp_path / "out", "-t", "/camera/imag_raw", "-w", tmp_path / "missing.pt")
    assert one_line_failure(result, "is not in")  # not "weights not found": the bag was checked first


def test_a_cached_export_without_its_sidecar_is_made_again(checkpoint):
    from dwrseg_rt.checkpoint import load_checkpoint
    from dwrseg_rt.runtime.backends import cached_onnx

    model, info = load_checkpoint(checkpoint)
    path = cached_onnx(checkpoint, model, info, (64, 32)).path
    sidecar = path.with_name(path.name + ".json")
    sidecar.unlink()
    again = cached_onnx(checkpoint, model, info, (64, 32)).path
    assert again == path and sidecar.is_file()
