"""Kill rate per module from one or more mutmut `mutants/` folders, as JSON.

Several folders merge module by module, a later folder's results replacing an earlier one's
(a pass split into halves run side by side, or a module re-run after its tests improved).
Kill rate = (killed + timeout) / mutants checked; "no tests" counts as surviving, and
mutants a bounded pass did not reach ("not checked") are reported apart.
Usage: python scripts/mutation_report.py [--seconds N] MUTANTS_DIR [MUTANTS_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

OUTPUT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "mutation.json"


def module_results(root: Path) -> dict[str, dict[str, str]]:
    """module -> {mutant name: status} for every .meta under `root`."""
    results = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = str(meta.relative_to(root)).removesuffix(".meta")
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        results[module] = {name: status_by_exit_code[code] if code is not None else "not checked" for name, code in codes.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--seconds", type=int, default=None, help="wall time of the pass, recorded in the JSON")
    args = parser.parse_args()
    merged: dict[str, dict[str, str]] = {}
    passes = []
    for root in args.roots:
        results = module_results(root)
        merged.update(results)
        stats = root / "mutmut-stats.json"
        commit = json.loads(stats.read_text()).get("git_commit") if stats.is_file() else None
        config = tomllib.loads((root.parent / "pyproject.toml").read_text()).get("tool", {}).get("mutmut", {})
        passes.append({"modules": sorted(results), "commit": commit, "tests": config.get("pytest_add_cli_args_test_selection")})
    modules = {}
    for module, statuses in sorted(merged.items()):
        counts = Counter(statuses.values())
        checked = len(statuses) - counts["not checked"]
        modules[module] = {**counts, "mutants": len(statuses),
                           "kill_rate": round((counts["killed"] + counts["timeout"]) / checked, 3) if checked else None,
                           "survivors": sorted(name for name, status in statuses.items() if status in ("survived", "no tests"))}
        print(f"{module:36s} {modules[module]['kill_rate']}  {dict(counts)}")
    total = Counter(status for statuses in merged.values() for status in statuses.values())
    overall = (total["killed"] + total["timeout"]) / (sum(total.values()) - total["not checked"])
    print(f"{'all':36s} {overall:.3f}  {dict(total)}")
    from importlib.metadata import version

    OUTPUT.write_text(json.dumps({"tool": f"mutmut {version('mutmut')}", "seconds": args.seconds, "machine": platform.machine(),
                                  "kill_rate": round(overall, 3), "counts": dict(total), "passes": passes, "modules": modules}, indent=2))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
