#!/usr/bin/env bash
# A bounded mutation pass (mutmut) over core modules: every mutant of metrics, OHEM loss, ROS
# message conversion, the output rule, preprocessing, the Segmenter, checkpoints, the ONNX
# export and BN folding, each run against the tests that cover it (configured in
# pyproject.toml [tool.mutmut]); not part of the default test run.
# Writes the kill rate per module and the surviving mutants to benchmarks/results/mutation.json
# (kill rate = killed or timed out / all mutants, "no tests" counted as surviving); the reason
# each survivor is left is in benchmarks/results/mutation-survivors.md.
# Usage: scripts/mutation.sh [--resume]   (pip install mutmut first; about 2 hours on 2 cores;
#        --resume continues an interrupted pass instead of starting afresh)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--resume" ] || rm -rf mutants
started=$(date +%s)
mutmut run --max-children "${JOBS:-1}" || true   # a non-zero exit only means mutants survived
python - "$started" <<'PY'
import json, platform, sys, time
from collections import defaultdict
from pathlib import Path
from mutmut.stats import status_by_exit_code

modules = defaultdict(lambda: defaultdict(int))
survivors = defaultdict(list)
for meta in Path("mutants").rglob("*.meta"):
    module = str(meta.relative_to("mutants")).removesuffix(".meta")
    for name, code in json.loads(meta.read_text()).get("exit_code_by_key", {}).items():
        status = status_by_exit_code[code] if code is not None else "not run"
        modules[module][status] += 1
        if status in ("survived", "no tests"):
            survivors[module].append(name)
report = {}
for module, counts in sorted(modules.items()):
    total = sum(counts.values())
    report[module] = {**counts, "kill_rate": round((counts["killed"] + counts["timeout"]) / total, 3) if total else None,
                      "survivors": sorted(survivors[module])}
    print(f"{module:40s} {report[module]['kill_rate']}  ({dict(counts)})")
out = {"tool": "mutmut", "seconds": round(time.time() - float(sys.argv[1])), "machine": platform.processor() or platform.machine(),
       "modules": report}
Path("benchmarks/results/mutation.json").write_text(json.dumps(out, indent=2))
print("wrote benchmarks/results/mutation.json")
PY
