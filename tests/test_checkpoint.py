from pathlib import Path

import pytest
import torch

from dwrseg_rt.checkpoint import DEFAULT_WEIGHTS, SHIPPED_WEIGHTS, ModelInfo, load_checkpoint, resolve_weights, save_checkpoint
from dwrseg_rt.data.labels import CAMVID, CITYSCAPES
from dwrseg_rt.errors import UserError
from dwrseg_rt.model import build_model


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model = build_model("l", CAMVID.num_classes).eval()
    info = ModelInfo.for_labels("l", CAMVID, input_size=(960, 720), training={"dataset": "camvid"})
    save_checkpoint(tmp_path / "m.pt", model, info)
    loaded, loaded_info = load_checkpoint(tmp_path / "m.pt")
    assert loaded_info == info
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))


def test_half_weights_are_half_the_size_and_still_agree(tmp_path):
    model = build_model("b", 19).eval()
    info = ModelInfo.for_labels("b", CITYSCAPES)
    save_checkpoint(tmp_path / "full.pt", model, info)
    save_checkpoint(tmp_path / "half.pt", model, info, half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    half, _ = load_checkpoint(tmp_path / "half.pt")
    x = torch.randn(1, 3, 64, 128)
    with torch.inference_mode():
        assert (half(x).argmax(1) == model(x).argmax(1)).float().mean() > 0.99


def test_mismatched_class_count_or_variant_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "m.pt", build_model("b", 19), ModelInfo.for_labels("b", CITYSCAPES))
    with pytest.raises(UserError, match="predicts 19 classes, but 11"):
        load_checkpoint(tmp_path / "m.pt", num_classes=11)
    with pytest.raises(UserError, match="DWRSeg-B, not DWRSeg-L"):
        load_checkpoint(tmp_path / "m.pt", variant="l")


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    info = ModelInfo.for_labels("l", CITYSCAPES)  # claims L, holds B weights
    save_checkpoint(tmp_path / "m.pt", build_model("b", 19), info)
    with pytest.raises(UserError, match="do not fit DWRSeg-L"):
        load_checkpoint(tmp_path / "m.pt")


def test_foreign_files_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a dwrseg-rt checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("name,labels,size", [("camvid", CAMVID, (480, 360)), ("synth", CITYSCAPES, (1024, 512))])
def test_shipped_models_are_small_fp16_and_self_describing(name, labels, size):
    path = SHIPPED_WEIGHTS[name]
    assert path.stat().st_size < 8 * 1024 * 1024
    payload = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    model, info = load_checkpoint(path)
    assert info.variant == "b" and info.classes == list(labels.classes)
    assert info.input_size == size
    assert info.training["dataset"] == ("camvid" if name == "camvid" else "synth")


def test_weights_by_name_resolve_to_the_shipped_files_and_camvid_is_the_default(tmp_path, monkeypatch):
    assert resolve_weights(None) == DEFAULT_WEIGHTS == SHIPPED_WEIGHTS["camvid"]
    assert resolve_weights("synth") == SHIPPED_WEIGHTS["synth"]
    assert resolve_weights("elsewhere/x.pt") == Path("elsewhere/x.pt")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synth").write_bytes(b"a file of that name wins")
    assert resolve_weights("synth") == Path("synth")


def test_written_files_get_normal_permissions(tmp_path):
    import os
    import stat

    from dwrseg_rt.io.outputs import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.json", lambda temp: temp.write_text("{}"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o644


def test_shipped_models_are_named_by_their_short_name_however_they_are_reached(tmp_path, monkeypatch):
    from dwrseg_rt.checkpoint import weights_name

    (tmp_path / "link.pt").symlink_to(SHIPPED_WEIGHTS["synth"])
    monkeypatch.chdir(SHIPPED_WEIGHTS["camvid"].parent)
    assert weights_name(Path("dwrseg_b_camvid.pt")) == "camvid"  # relative
    assert weights_name(tmp_path / "link.pt") == "synth"  # through a link
    assert weights_name(tmp_path / "my_model.pt") == "my_model"


def test_model_info_is_read_from_a_checkpoint_or_an_exports_sidecar(checkpoint, tmp_path):
    from dwrseg_rt.checkpoint import read_model_info, write_sidecar

    info = load_checkpoint(checkpoint)[1]
    assert read_model_info(checkpoint) == info
    for suffix in (".onnx", ".engine"):
        export = tmp_path / f"m{suffix}"
        export.write_bytes(b"model")
        write_sidecar(export, info, inference_size=[64, 32])
        assert read_model_info(export) == info
        with pytest.raises(UserError, match=f"weights not found: .*missing{suffix}"):
            read_model_info(tmp_path / f"missing{suffix}")
    (tmp_path / "bare.onnx").write_bytes(b"model")
    with pytest.raises(UserError, match="has no metadata sidecar bare.onnx.json"):
        read_model_info(tmp_path / "bare.onnx")


def test_recorded_results_join_the_training_notes_in_place(checkpoint, tmp_path):
    import shutil

    from dwrseg_rt.checkpoint import record_training

    path = tmp_path / "m.pt"
    shutil.copyfile(checkpoint, path)
    before = load_checkpoint(path)[1].training
    record_training(path, val_miou=0.5, note="x")
    model, info = load_checkpoint(path)
    assert info.training == {**before, "val_miou": 0.5, "note": "x"}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind
    original = load_checkpoint(checkpoint)[0].state_dict()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in original.items())


def test_model_info_for_a_label_set_carries_its_name_and_options():
    info = ModelInfo.for_labels("l", CAMVID, input_size=(480, 360))
    assert (info.variant, info.label_set, info.classes[:2], tuple(info.input_size)) == ("l", "camvid", ["sky", "building"], (480, 360))
    assert [tuple(c) for c in info.palette] == list(CAMVID.palette)


def test_a_checkpoint_with_garbled_info_is_named_in_the_error(tmp_path):
    from dwrseg_rt.checkpoint import read_model_info

    path = tmp_path / "garbled.pt"
    torch.save({"format": "dwrseg-rt/1", "info": {"variant": "b"}, "state_dict": {}}, path)
    with pytest.raises(UserError, match="garbled.pt"):
        read_model_info(path)


def test_broken_checkpoints_and_sidecars_are_named_with_what_is_wrong(checkpoint, tmp_path):
    import json

    from dwrseg_rt.checkpoint import read_sidecar, write_sidecar

    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "info": {"variant": "b"}}, tmp_path / "noinfo.pt")
    with pytest.raises(UserError, match="noinfo.pt"):
        load_checkpoint(tmp_path / "noinfo.pt")
    torch.save({k: v for k, v in payload.items() if k != "state_dict"}, tmp_path / "noweights.pt")
    with pytest.raises(UserError, match=r"noweights.pt holds no weights \(state_dict\)"):
        load_checkpoint(tmp_path / "noweights.pt")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    sidecar = write_sidecar(model, load_checkpoint(checkpoint)[1])
    sidecar.write_text("{not json")
    with pytest.raises(UserError, match=r"m.onnx.json is not a valid dwrseg-rt sidecar \(JSONDecodeError\)"):
        read_sidecar(model)
    sidecar.write_text(json.dumps({"format": "other/9", "info": {}}))
    with pytest.raises(UserError, match=r"m.onnx.json is not a dwrseg-rt sidecar \(expected format dwrseg-rt/1\)"):
        read_sidecar(model)
    sidecar.write_text(json.dumps({"format": "dwrseg-rt/1", "info": {"variant": "b"}}))
    with pytest.raises(UserError, match="m.onnx.json"):
        read_sidecar(model)


def garbled(**changes):
    info = ModelInfo.for_labels("b", CAMVID).to_dict()
    info.update(changes)
    return info


@pytest.mark.parametrize("data,phrase", [
    ([1, 2], "model metadata is not a table of fields"),
    ({"variant": "b"}, "model metadata lacks classes, palette"),
    (garbled(variant=7), "names variant 7, not one of b, l"),
    (garbled(variant="xl"), "names variant 'xl', not one of b, l"),
    (garbled(classes=[], palette=[]), r"has no valid class list \(1-254 names\)"),
    (garbled(classes=[f"c{i}" for i in range(255)], palette=[[0, 0, 0]] * 255), "has no valid class list"),
    (garbled(classes=["road", 3]), "has no valid class list"),
    (garbled(classes="road"), "has no valid class list"),
    (garbled(palette=[[0, 0, 0]] * 10), r"needs one RGB color \(0-255\) per class \(11\)"),
    (garbled(palette=[[0, 0, 0]] * 10 + [[0, 0]]), "needs one RGB color"),
    (garbled(palette=[[0, 0, 0]] * 10 + [[0, 0, 256]]), "needs one RGB color"),
    (garbled(palette=[[0, 0, 0]] * 10 + [[0, 0, 1.5]]), "needs one RGB color"),
    (garbled(palette=[[0, 0, 0]] * 10 + ["red"]), "needs one RGB color"),
    (garbled(palette="red"), "needs one RGB color"),
])
def test_model_metadata_is_refused_field_by_field_naming_the_source(data, phrase):
    with pytest.raises(UserError, match=f"^weights.pt: .*{phrase}"):
        ModelInfo.from_dict(data, "weights.pt")


def test_model_metadata_at_the_limits_is_accepted():
    classes = [f"c{i}" for i in range(254)]
    info = ModelInfo.from_dict(garbled(classes=classes, palette=[[255, 0, 0]] * 254))
    assert info.num_classes == 254
    assert ModelInfo.from_dict(garbled(classes=["only"], palette=[(0, 0, 0)])).num_classes == 1
    with pytest.raises(UserError, match="^model: "):  # a source by default
        ModelInfo.from_dict([])


def test_a_checkpoint_loads_for_its_own_variant_and_class_count_and_says_what_does_not_fit(checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint, num_classes=19, variant="b")
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(UserError, match="holds DWRSeg-B, not DWRSeg-L"):
        load_checkpoint(checkpoint, variant="l")
    payload = torch.load(checkpoint, weights_only=True)
    state = dict(payload["state_dict"])
    state.pop(next(iter(state)))
    torch.save({**payload, "state_dict": state}, tmp_path / "short.pt")
    with pytest.raises(UserError, match=r"short.pt: weights do not fit DWRSeg-B \(Error\(s\) in loading state_dict"):
        load_checkpoint(tmp_path / "short.pt")


class Planted:
    """A pickle that runs code when unpickled: what a doctored checkpoint would carry."""

    def __reduce__(self):
        import os

        return os.system, (f"touch {os.environ['DWRSEG_PLANTED']}",)


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DWRSEG_PLANTED", str(tmp_path / "ran"))
    torch.save({"format": "dwrseg-rt/1", "payload": Planted()}, tmp_path / "planted.pt")
    with pytest.raises(UserError, match=r"cannot read .*planted.pt as a dwrseg-rt checkpoint \(UnpicklingError\)"):
        load_checkpoint(tmp_path / "planted.pt")
    assert not (tmp_path / "ran").exists()


def test_metadata_without_size_or_normalisation_gets_the_defaults_and_malformed_ones_are_refused():
    from dwrseg_rt.checkpoint import IMAGENET_MEAN, IMAGENET_STD

    bare = {k: v for k, v in garbled().items() if k not in ("input_size", "mean", "std")}
    info = ModelInfo.from_dict(bare)
    assert (tuple(info.input_size), info.mean, info.std) == (tuple(ModelInfo.input_size), IMAGENET_MEAN, IMAGENET_STD)
    custom = ModelInfo.from_dict(garbled(mean=[1, 2, 3], std=[4, 5, 6]))
    assert (custom.mean, custom.std) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    with pytest.raises(UserError, match="has a malformed input_size, mean or std"):
        ModelInfo.from_dict(garbled(mean="gray"))


def test_input_sizes_from_16_to_8192_pixels_a_side_are_accepted():
    for size in ([16, 16], [8192, 8192], [16, 8192]):
        assert list(ModelInfo.from_dict(garbled(input_size=size)).input_size) == size
    for size in ([15, 512], [8193, 512], [1024, 15], [1024, 8193], [8193, 8193]):
        with pytest.raises(UserError, match=f"has input size {size[0]}x{size[1]}; expected 16-8192 pixels a side"):
            ModelInfo.from_dict(garbled(input_size=size))
