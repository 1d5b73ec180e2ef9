"""Print pyproject.toml's dependency floors as exact pins ('torch>=2.1.2' -> 'torch==2.1.2'),
one per line: what .ci/envelope.sh installs. Arguments name packages of the extras to pin too
(e.g. rosbags). Python 3.11+ (tomllib)."""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
extras = {re.match(r"[A-Za-z0-9_.-]+", r).group(): r for rs in project["optional-dependencies"].values() for r in rs}
for requirement in project["dependencies"] + [extras[name] for name in sys.argv[1:]]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement.split(";")[0].strip()).groups()
    print(f"{name}=={floor}")
