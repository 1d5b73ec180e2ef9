"""Training and evaluation on small generated datasets: the real loop, the real files."""

import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.data.datasets import cityscapes_files, folder_files
from dwrseg_rt.errors import UserError
from dwrseg_rt.train.trainer import TrainConfig, poly_lr, train


def test_a_few_dozen_steps_lower_the_loss(synth_root, tmp_path):
    losses = []
    config = TrainConfig(dataset="synth", data=synth_root, output=tmp_path / "m.pt", iterations=40, batch_size=4,
                         crop=(128, 64), scale=(0.4, 0.6), workers=0, warmup=0, lr=0.02)
    summary = train(config, lambda step, total, loss, lr: losses.append(loss))
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    model, info = load_checkpoint(tmp_path / "m.pt")
    assert info.training["iterations"] == 40 == summary["iterations"]
    assert info.classes[0] == "road" and info.input_size == (1024, 512)


def test_poly_schedule_warms_up_then_decays_to_zero():
    assert poly_lr(0, 100, 0.02, 0.9, 10) == pytest.approx(0.0002)
    assert poly_lr(10, 100, 0.02, 0.9, 10) == pytest.approx(0.02)
    assert poly_lr(55, 100, 0.02, 0.9, 10) == pytest.approx(0.02 * 0.5**0.9)
    assert poly_lr(100, 100, 0.02, 0.9, 10) == 0


def make_folder_dataset(root, count=6, classes=("background", "thing")):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for index in range(count):
        mask = np.zeros((48, 64), np.uint8)
        x, y = rng.integers(0, 40), rng.integers(0, 24)
        mask[y : y + 20, x : x + 20] = 1
        image = np.where(mask[..., None] == 1, [200, 40, 40], [40, 40, 200]).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"img{index}.jpg"), image)
        cv2.imwrite(str(root / "masks" / f"img{index}.png"), mask)
    return root


def test_train_and_eval_commands_on_a_plain_folder(tmp_path):
    root = make_folder_dataset(tmp_path / "data")
    weights = tmp_path / "folder.pt"
    trained = run_cli("train", "--dataset", "folder", "--data", root, "-o", weights, "--iterations", "6", "--batch-size", "2",
                      "--crop", "64x48", "--workers", "0", "--input-size", "64x48")
    assert trained.returncode == 0, trained.stderr
    model, info = load_checkpoint(weights)
    assert info.classes == ["background", "thing"] and info.num_classes == 2
    report = tmp_path / "eval.json"
    evaluated = run_cli("eval", "--dataset", "folder", "--data", root, "--weights", weights, "--json", report)
    assert evaluated.returncode == 0, evaluated.stderr
    data = json.loads(report.read_text())
    assert 0.0 <= data["miou"] <= 1.0 and set(data["per_class"]) == {"background", "thing"}
    assert "mIoU" in evaluated.stdout


def test_eval_refuses_a_model_for_other_classes(tmp_path, checkpoint):
    root = make_folder_dataset(tmp_path / "data")
    result = run_cli("eval", "--dataset", "folder", "--data", root, "--weights", checkpoint)
    assert result.returncode != 0 and "19 classes" in result.stderr and "Traceback" not in result.stderr


def test_dataset_errors_say_what_is_wrong(tmp_path, synth_root):
    with pytest.raises(UserError, match="not a Cityscapes root"):
        cityscapes_files(tmp_path, "train")
    with pytest.raises(UserError, match="no 'test' split"):
        cityscapes_files(synth_root, "test")
    root = make_folder_dataset(tmp_path / "f")
    (root / "masks" / "img0.png").unlink()
    with pytest.raises(UserError, match="5 masks"):
        folder_files(root)
    copy = tmp_path / "c"
    shutil.copytree(synth_root, copy)
    next((copy / "gtFine" / "val").rglob("*.png")).unlink()
    with pytest.raises(UserError, match="no label for"):
        cityscapes_files(copy, "val")
