"""Print pyproject.toml's dependency floors as exact pins ('torch>=2.1.2' -> 'torch==2.1.2'),
one per line: what the envelope check installs (Python 3.11+: tomllib)."""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
extras = sys.argv[1:]  # optional extras whose floors to pin too, e.g. ros
for requirement in project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement.split(";")[0].strip()).groups()
    print(f"{name}=={floor}")
