"""The accuracy figures users read describe the weights that ship, not an earlier run's.

Retraining replaces `dwrseg_rt/weights/*.pt`; a result file left from the previous weights (or a
README table not updated) would then quote numbers nobody can reproduce. Each result file names
the sha256 of the weights it scored, so staleness is checkable without the datasets.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dwrseg_rt.runtime.cache import file_digest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WEIGHTS = ROOT / "dwrseg_rt" / "weights"

# accuracy reports of a shipped model -> the file they scored (speed-only reports do not depend on weights)
SCORED = {
    "camvid-test.json": "dwrseg_b_camvid.pt",
    "camvid-test-tta-flip.json": "dwrseg_b_camvid.pt",
    "camvid-test-int8.json": "dwrseg_b_camvid.pt",
    "camvid-test-int8-synthetic-calibration.json": "dwrseg_b_camvid.pt",
    "synth-val-camvid-model.json": "dwrseg_b_camvid.pt",
    "aspect-crops.json": "dwrseg_b_camvid.pt",
    "offline-options.json": "dwrseg_b_camvid.pt",
    "camvid-test-synth-model.json": "dwrseg_b_synth.pt",
}


@pytest.mark.parametrize("report, weights", sorted(SCORED.items()))
def test_report_scored_the_shipped_weights(report: str, weights: str) -> None:
    shipped = file_digest(WEIGHTS / weights)  # the digest `eval --json` writes
    assert json.loads((RESULTS / report).read_text())["weights_sha256"] == shipped, f"{report} is from other weights than {weights}"


def test_readme_accuracy_row_matches_the_test_report() -> None:
    report = json.loads((RESULTS / "camvid-test.json").read_text())
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `camvid` (this repository"))
    cells = [cell.strip().strip("*") for cell in row.split("|")[1:-1]]
    expected = [report["miou"], report["pixel_acc"], *report["per_class"].values()]
    assert [float(cell) for cell in cells[1:1 + len(expected)]] == [round(v * 100, 1) for v in expected]
    assert f"{report['iterations']} steps" in cells[0]
