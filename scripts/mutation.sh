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
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # forked test workers must not inherit a thread pool (torch hangs after fork)
started=$(date +%s)
mutmut run --max-children "${JOBS:-1}" || true   # a non-zero exit only means mutants survived
python scripts/mutation_report.py --seconds $(( $(date +%s) - started )) mutants
