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


def test_the_zoo_tables_published_accuracy_is_each_files_metadata() -> None:
    import re

    import nasc

    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(genotypes/\w+\.cell)` \| \w+ \| ([\w /]+) \|.*\| ([^|]+) \|$", text, re.M)
    assert {path for path, _, _ in rows} == {
        f"genotypes/{p.name}" for p in (ROOT / "genotypes").glob("*.cell")
    }
    for path, presets, accuracy in rows:
        metadata = {entry.key: entry.value for entry in nasc.load(ROOT / path).metadata}
        shown = [part.split("(")[0].strip() for part in accuracy.split(" / ")]
        expected = [str(metadata.get(f"top1_{preset.strip()}", "—")) for preset in presets.split("/")]
        assert shown == expected, path
