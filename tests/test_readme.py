"""The README opens with the two set-up commands, and CI runs the second one verbatim."""

from __future__ import annotations

import re

from .conftest import ROOT


def readme_commands() -> list[str]:
    first_block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in first_block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_main_job_and_test_commands() -> None:
    main_job, tests = readme_commands()
    assert "nasc" in main_job and "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = readme_commands()
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
