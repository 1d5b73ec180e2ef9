import numpy as np

from dwrseg_rt.data.datasets import cityscapes_files
from dwrseg_rt.data.synth import Street, generate


def test_same_seed_same_pixels_different_seed_different_world():
    a_image, a_label = Street(7, 160, 80).render(0.4)
    b_image, b_label = Street(7, 160, 80).render(0.4)
    assert np.array_equal(a_image, b_image) and np.array_equal(a_label, b_label)
    c_image, _ = Street(8, 160, 80).render(0.4)
    assert not np.array_equal(a_image, c_image)


def test_labels_are_cityscapes_train_ids_with_the_main_classes():
    counts = np.zeros(256, np.int64)
    for seed in range(6):
        _, label = Street(seed, 320, 160).render(1.0)
        counts += np.bincount(label.ravel(), minlength=256)
    assert counts[19:].sum() == 0  # only train ids 0-18
    for class_id in (0, 1, 2, 5, 8, 10, 11, 13):  # road, sidewalk, building, pole, vegetation, sky, person, car
        assert counts[class_id] > 0, class_id


def test_motion_is_coherent_between_frames():
    street = Street(2, 320, 160)
    f0, l0 = street.render(0.0)
    f1, l1 = street.render(1 / 30)
    f9, l9 = street.render(1.0)
    near = (l0 != l1).mean()
    far = (l0 != l9).mean()
    assert 0 < near < far  # consecutive frames differ a little, a second apart a lot more


def test_generate_writes_cityscapes_layout_and_clip(synth_root):
    train = cityscapes_files(synth_root, "train")
    val = cityscapes_files(synth_root, "val")
    assert (len(train), len(val)) == (8, 4)
    image, label = train.load(0)
    assert image.shape == (128, 256, 3) and label.shape == (128, 256)
    assert (synth_root / "drive.mp4").stat().st_size > 1000


def test_generate_is_deterministic(tmp_path):
    generate(tmp_path / "a", seed=5, train=1, val=1, clip_frames=0, width=128, height=64)
    generate(tmp_path / "b", seed=5, train=1, val=1, clip_frames=0, width=128, height=64)
    for path in (tmp_path / "a").rglob("*.png"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_synth_command_writes_a_clip_and_will_not_write_into_a_used_folder(tmp_path):
    from conftest import run_cli

    result = run_cli("synth", tmp_path / "new" / "world", "--train", "0", "--val", "0", "--clip-frames", "3", "--size", "128x64")
    assert result.returncode == 0, result.stderr  # the README's first command: a clip alone, into a new folder
    assert (tmp_path / "new" / "world" / "drive.mp4").is_file()
    again = run_cli("synth", tmp_path / "new" / "world", "--train", "1", "--val", "0", "--clip-frames", "3")
    assert again.returncode != 0 and "--force" in again.stderr


def test_varied_streets_draw_their_own_camera_and_keep_the_plain_layout():
    from dwrseg_rt.data.synth import Look

    assert Street(3, 160, 80).look == Look()  # plain streets: the camera the shipped models trained with
    looks = [Street(seed, 160, 80, varied=True).look for seed in range(40)]
    heights, focals = [look.height for look in looks], [look.focal for look in looks]
    assert min(heights) < 1.0 and max(heights) > 2.2 and min(focals) < 0.6 and max(focals) > 1.1
    assert sum(look.distortion > 0.05 for look in looks) > 5 and sum(abs(look.roll) > 1 for look in looks) > 10
    plain, varied = Street(3, 160, 80), Street(3, 160, 80, varied=True)
    assert [(p.kind, p.x, p.z) for p in plain.props] == [(p.kind, p.x, p.z) for p in varied.props]
    assert not np.array_equal(plain.render(0.4)[0], varied.render(0.4)[0])
    a_image, a_label = Street(3, 160, 80, varied=True).render(0.4)
    assert np.array_equal(a_image, varied.render(0.4)[0]) and np.array_equal(a_label, varied.render(0.4)[1])


def test_lens_warp_moves_labels_with_pixels_and_never_samples_outside_the_drawing():
    import cv2

    from dwrseg_rt.data.synth import Look

    width, height = 320, 160
    label = np.zeros((height, width), np.uint8)
    label[:, width // 3:] = 1
    label[height // 2:, :] = 2
    image = (label * 100).astype(np.uint8)
    for look in (Look(roll=3.0), Look(distortion=0.3), Look(roll=-3.0, distortion=-0.05)):
        maps = look.lens_maps(width, height)
        warped_label = cv2.remap(label, *maps, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        warped_image = cv2.remap(image, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        assert (warped_label != 255).all()  # zoomed just enough: no pixel from beyond the edges
        assert not np.array_equal(warped_label, label)
        assert (np.abs(warped_image.astype(int) - warped_label * 100) > 50).mean() < 0.01  # edges move together
