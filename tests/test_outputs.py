"""The output rule (dwrseg_rt/io/outputs.py) called directly: each refusal with its message,
temporaries that are unique, hidden and beside the target, and the permissions of a normal
new file. The commands' use of it is tested end to end in test_safety.py."""

import os
import stat

import pytest

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.outputs import atomic_write, check_output_path, publish, same_file, temp_file_for


def test_each_refusal_names_the_path_and_what_to_do(tmp_path):
    source = tmp_path / "in.mp4"
    source.write_bytes(b"video")
    os.link(source, tmp_path / "hard.mp4")
    with pytest.raises(UserError, match=r"output .*hard\.mp4 is the input .*in\.mp4; choose another output path"):
        check_output_path(tmp_path / "hard.mp4", True, [None, source])
    with pytest.raises(UserError, match=r"output .* is a folder; name a file"):
        check_output_path(tmp_path, True)
    with pytest.raises(UserError, match=r"output .*in\.mp4 is a file; name a folder"):
        check_output_path(source, True, folder=True)
    with pytest.raises(UserError, match=r"output .*in\.mp4 exists; pass --force to overwrite it"):
        check_output_path(source, False)
    with pytest.raises(UserError, match=r"output folder .*missing does not exist"):
        check_output_path(tmp_path / "missing" / "o.mp4", False)
    check_output_path(source, True)  # allowed: forced, not an input
    check_output_path(tmp_path, True, folder=True)  # an existing folder for a folder output, forced
    check_output_path(tmp_path / "new.mp4", False, [source])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match="is not writable"):
        check_output_path(locked / "o.mp4", False)


def test_a_bare_file_name_is_checked_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_output_path(type(tmp_path)("o.mp4"), False)
    (tmp_path / "o.mp4").write_text("x")
    with pytest.raises(UserError, match="exists"):
        check_output_path(type(tmp_path)("o.mp4"), False)


def test_same_file_sees_links_and_never_fails(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    (tmp_path / "link").symlink_to(a)
    assert same_file(a, tmp_path / "link") and same_file(a, tmp_path / "." / "a")
    assert not same_file(a, tmp_path / "missing") and not same_file(tmp_path / "missing", a)
    b = tmp_path / "b"
    b.write_text("x")
    assert not same_file(a, b)


def test_temporaries_are_unique_hidden_and_beside_the_target(tmp_path):
    target = tmp_path / "drive.mp4"
    first, second = temp_file_for(target), temp_file_for(target)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith(".drive.") and first.name.endswith(".partial.mp4") and first.is_file()
    assert not target.exists()


def test_publish_gives_the_permissions_of_a_normal_new_file(tmp_path):
    old = os.umask(0o027)
    try:
        temp = temp_file_for(tmp_path / "m.pt")
        publish(temp, tmp_path / "m.pt")
        folder = tmp_path / ".staged"
        folder.mkdir(mode=0o700)
        publish(folder, tmp_path / "bag")
    finally:
        os.umask(old)
    assert not temp.exists() and stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "bag").stat().st_mode) == 0o750


def test_atomic_write_makes_the_folder_and_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "deep" / "er" / "out.json"
    atomic_write(target, lambda temp: temp.write_text("{}"))
    assert target.read_text() == "{}" and sorted(p.name for p in target.parent.iterdir()) == ["out.json"]

    def broken(temp):
        temp.write_text("half")
        raise KeyboardInterrupt  # Ctrl+C mid-write: BaseException, not Exception

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert target.read_text() == "{}" and sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_a_writer_that_fails_after_removing_its_temporary_keeps_its_own_error(tmp_path):
    def gone(temp):
        temp.unlink()
        raise ValueError("the writer's own error")

    with pytest.raises(ValueError, match="the writer's own error"):
        atomic_write(tmp_path / "out.bin", gone)
    assert list(tmp_path.iterdir()) == []
