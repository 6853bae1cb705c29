from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENOTYPES = ROOT / "genotypes"
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="session")
def nasnet_a_text() -> str:
    return (GENOTYPES / "nasnet_a.cell").read_text()


def cell_text(normal_body: str, *, reduction_body: str | None = None, header: str = "genotype t") -> str:
    """A complete genotype around one normal-cell body (lines indented by the caller or not)."""
    reduction_body = reduction_body or "h2 = add(identity(h0), identity(h1))\nreturn concat(h2)"
    return f"{header}\nnormal(h0, h1) {{\n{normal_body}\n}}\nreduction(h0, h1) {{\n{reduction_body}\n}}\n"
