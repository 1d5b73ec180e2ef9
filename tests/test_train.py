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
                         crop=(128, 64), scale=(0.4, 0.6), workers=0, warmup=0, lr=0.02, input_size=(128, 64), val_every=20)
    summary = train(config, lambda step, total, loss, lr: losses.append(loss))
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    model, info = load_checkpoint(tmp_path / "m.pt")
    assert info.training["iterations"] == 40 == summary["iterations"]
    assert info.classes[0] == "road" and info.input_size == (128, 64)
    run = tmp_path / "m_run"
    log = (run / "log.csv").read_text().splitlines()
    assert log[0] == "step,epoch,loss,lr,val_miou,seconds" and len(log) == 41
    assert log[20].split(",")[4] and log[40].split(",")[4]  # validated at steps 20 and 40
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    assert 0 <= info.training["val_miou"] <= 1


def test_poly_schedule_warms_up_then_decays_to_zero():
    assert poly_lr(0, 100, 0.02, 0.9, 10) == pytest.approx(0.0002)
    assert poly_lr(10, 100, 0.02, 0.9, 10) == pytest.approx(0.02 * 0.9**0.9)  # warm-up reaches the poly curve
    assert poly_lr(50, 100, 0.02, 0.9, 10) == pytest.approx(0.02 * 0.5**0.9)
    assert poly_lr(100, 100, 0.02, 0.9, 10) == 0


def test_a_run_shorter_than_its_warm_up_rises_and_falls_smoothly_without_reaching_the_base_rate():
    rates = [poly_lr(step, 30, 0.02, 0.9, 1000) for step in range(31)]
    peak = int(np.argmax(rates))
    assert 10 < peak < 20 and max(rates) < 0.3 * 0.02  # one hump mid-run, not the full rate at step 3
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1]))
    assert all(a > b for a, b in zip(rates[peak:-1], rates[peak + 1 :]))
    assert max(abs(b - a) for a, b in zip(rates, rates[1:])) < 0.05 * 0.02


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


def tiny_config(root, output, **overrides):
    settings = dict(dataset="synth", data=root, output=output, iterations=6, batch_size=2, crop=(96, 48), scale=(0.3, 0.5),
                    workers=0, warmup=2, input_size=(96, 48), val_every=100)
    return TrainConfig(**{**settings, **overrides})


def test_resume_after_ctrl_c_gives_the_same_weights_as_an_uninterrupted_run(synth_root, tmp_path):
    import torch

    train(tiny_config(synth_root, tmp_path / "straight.pt"))

    def stop_at_3(step, total, loss, lr):
        if step == 3:
            raise KeyboardInterrupt  # what Ctrl+C raises in the training loop

    config = tiny_config(synth_root, tmp_path / "resumed.pt")
    with pytest.raises(KeyboardInterrupt):
        train(config, stop_at_3)
    assert not (tmp_path / "resumed.pt").exists()
    train(config, resume=config.run_dir)
    straight, _ = load_checkpoint(tmp_path / "straight.pt")
    resumed, _ = load_checkpoint(tmp_path / "resumed.pt")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_resume_refuses_a_different_run(synth_root, tmp_path):
    config = tiny_config(synth_root, tmp_path / "a.pt", iterations=2)
    train(config)
    with pytest.raises(UserError, match="batch_size"):
        train(tiny_config(synth_root, tmp_path / "b.pt", batch_size=4), resume=config.run_dir)


def test_torchrun_two_cpu_processes_train_and_write_one_checkpoint(synth_root, tmp_path):
    import subprocess
    import sys

    output = tmp_path / "ddp.pt"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29531", "-m", "dwrseg_rt",
                             "train", "--dataset", "synth", "--data", str(synth_root), "-o", str(output), "--iterations", "3",
                             "--batch-size", "4", "--crop", "96x48", "--workers", "0", "--input-size", "96x48", "--val-every", "3"],
                            capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    model, info = load_checkpoint(output)
    assert info.training["iterations"] == 3 and "val_miou" in info.training
    assert list(tmp_path.glob("*.pt")) == [output]  # one checkpoint, written by rank 0
    assert len((tmp_path / "ddp_run" / "log.csv").read_text().splitlines()) == 4


def test_camvid_layout_maps_void_to_ignore(tmp_path):
    from dwrseg_rt.data.datasets import camvid_files

    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        cv2.imwrite(str(tmp_path / split / "0001TP_006690.png"), np.zeros((36, 48, 3), np.uint8))
        cv2.imwrite(str(tmp_path / f"{split}annot" / "0001TP_006690.png"), np.array([[0, 5, 10, 11]] * 36 * 12, np.uint8).reshape(36, 48))
    files = camvid_files(tmp_path, "train")
    _, label = files.load(0)
    assert set(np.unique(label)) == {0, 5, 10, 255}
    assert files.labels.classes[0] == "sky" and files.labels.num_classes == 11
    with pytest.raises(UserError, match="no 'test' split"):
        camvid_files(tmp_path, "test")


def test_cityscapes_label_ids_are_mapped_to_train_ids(tmp_path):
    image_dir = tmp_path / "leftImg8bit" / "val" / "aachen"
    label_dir = tmp_path / "gtFine" / "val" / "aachen"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    cv2.imwrite(str(image_dir / "aachen_000000_000019_leftImg8bit.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(label_dir / "aachen_000000_000019_gtFine_labelIds.png"), np.array([[7, 8, 26, 0]] * 4, np.uint8))
    _, label = cityscapes_files(tmp_path, "val").load(0)
    assert label[0].tolist() == [0, 1, 13, 255]  # road, sidewalk, car, unlabeled -> ignore


def test_unknown_label_values_stop_training_with_a_clear_error(tmp_path):
    root = make_folder_dataset(tmp_path / "data")
    cv2.imwrite(str(root / "masks" / "img0.png"), np.full((48, 64), 7, np.uint8))
    with pytest.raises(UserError, match=r"label values \[7\]"):
        train(TrainConfig(dataset="folder", data=root, output=tmp_path / "m.pt", iterations=3, batch_size=6, crop=(64, 48), workers=0))


def test_init_copies_every_fitting_tensor_and_leaves_another_classifier_fresh(tmp_path, checkpoint):
    import torch

    from dwrseg_rt.model import build_model
    from dwrseg_rt.train.trainer import initialise_from

    source, _ = load_checkpoint(checkpoint)  # 19 classes
    target = build_model("b", num_classes=2)
    fresh, mapped = initialise_from(target, checkpoint, "b")
    assert mapped is None
    assert fresh == ["head.1.weight", "head.1.bias"]
    for name, tensor in target.state_dict().items():
        if name not in fresh:
            assert torch.equal(tensor, source.state_dict()[name]), name
    with pytest.raises(UserError, match="not DWRSeg-L"):
        initialise_from(build_model("l", 2), checkpoint, "l")
