"""The one rule for every file or folder a command writes.

Checked before any work: never overwrite without `--force`, never write over an input (same
file through a symlink, `../` or a hard link; for a folder input, any file in it), whatever
`--force` says, never replace a folder with a file. Inputs are everything a command reads:
media, weights, --init, --class-map, calibration and dataset folders, a resumed run. Written
under a unique hidden temporary name beside the target (so two runs never share one) and
renamed into place only when complete; every failure path removes the temporary.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from dwrseg_rt.errors import UserError


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def overwrites(path: Path, source: Path) -> bool:
    """Whether writing `path` would write over `source`: the same file, or for a folder, the
    folder itself or a file in it (only an existing `path` can be one of those)."""
    if not source.is_dir():
        return same_file(source, path)
    if not path.exists():
        return False
    if same_file(path, source) or path.resolve().is_relative_to(source.resolve()):
        return True
    return path.is_file() and any(same_file(path, inner) for inner in source.rglob("*") if inner.is_file())


def check_output_path(path: Path, force: bool, inputs: Iterable[Path | None] = (), folder: bool = False) -> None:
    """Refuse to overwrite silently, to clobber an input (file or folder; --force never
    overrides that), to put a file where a folder is (or the other way round), or to write
    where we cannot."""
    path = Path(path)
    for source in inputs:
        if source is not None and overwrites(path, Path(source)):
            where = "in the input folder" if Path(source).is_dir() else "the input"
            raise UserError(f"output {path} is {where} {source}; choose another output path")
    if path.is_dir() and not folder:
        raise UserError(f"output {path} is a folder; name a file")
    if path.exists() and folder and not path.is_dir():
        raise UserError(f"output {path} is a file; name a folder")
    if path.exists() and not force:
        raise UserError(f"output {path} exists; pass --force to overwrite it")
    parent = path.parent  # Path("o.mp4").parent is Path(".")
    if not parent.is_dir():
        raise UserError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"output folder {parent} is not writable")


def temp_file_for(path: Path) -> Path:
    """A new, unique, hidden file beside `path` (same file system, so the final rename is atomic)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(fd)
    return Path(temp)


def publish(temp: Path, path: Path) -> None:
    """Give a finished temporary the permissions of a normal new file and rename it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, (0o777 if temp.is_dir() else 0o666) & ~umask)  # mkstemp/mkdtemp make 0600/0700
    os.replace(temp, path)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temp_path)` and rename the result into place only when it succeeded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_file_for(path)
    try:
        write(temp)
        publish(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
