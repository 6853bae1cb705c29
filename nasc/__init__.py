"""nasc — a compiler for neural-architecture cells.

The public API::

    import nasc
    genotype = nasc.load("genotypes/nasnet_a.cell")     # parse + check, raises nasc.NascError
    text = nasc.format(genotype)                         # canonical text
    digest = nasc.structural_hash(genotype)              # architecture identity (hex)
"""

from __future__ import annotations

from pathlib import Path

from nasc.version import __version__

# In a source checkout the card's top-level folders (grammar/, compiler/, ...) stand beside this
# package; an installed wheel puts them inside it. Extending __path__ makes `nasc.compiler` resolve
# in both cases, including `python -m nasc` run from the repository root.
_checkout_root = Path(__file__).resolve().parent.parent
if (_checkout_root / "compiler" / "__init__.py").is_file() and not (
    Path(__file__).parent / "compiler"
).exists():
    __path__.append(str(_checkout_root))  # type: ignore[name-defined]

from nasc.compiler.api import format, load, parse, structural_hash  # noqa: E402
from nasc.diagnostics import Diagnostic, NascError  # noqa: E402

__all__ = ["Diagnostic", "NascError", "__version__", "format", "load", "parse", "structural_hash"]
