"""The CI entry point runs exactly what the README tells a new engineer to run, fuzz tests included."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_with_the_fuzz_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"```sh\n(python3 -m venv \.venv .*-m pytest)\n```", readme)
    assert m, "README: the test command block is missing"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert m[1] in ci, ".ci/run must run the README's test command verbatim"
    fuzz = [line for line in ci if line.startswith("export FACELINK_FUZZ_EXAMPLES=")]
    assert fuzz and ci.index(fuzz[0]) < ci.index(m[1]), "CI sets FACELINK_FUZZ_EXAMPLES (the fuzz tests run) before the tests"
