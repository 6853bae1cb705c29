"""The registry of network conventions. Adding one is one module beside these and one entry here;
the parser, the IR, the printer, the hash and the command line need no change."""

from __future__ import annotations

from types import MappingProxyType

from nasc.compiler.conventions.amoebanet import AMOEBANET
from nasc.compiler.conventions.base import Convention
from nasc.compiler.conventions.darts import DARTS
from nasc.compiler.conventions.nasnet import NASNET
from nasc.compiler.conventions.nb201 import NB201
from nasc.compiler.conventions.pnasnet import PNASNET

DEFAULT = NASNET.name

CONVENTIONS: MappingProxyType[str, Convention] = MappingProxyType(
    {convention.name: convention for convention in (NASNET, PNASNET, AMOEBANET, DARTS, NB201)}
)


def convention_of(genotype) -> Convention:
    """The convention a (checked) genotype names."""
    return CONVENTIONS[genotype.convention]


__all__ = [
    "AMOEBANET",
    "CONVENTIONS",
    "DARTS",
    "DEFAULT",
    "NASNET",
    "NB201",
    "PNASNET",
    "Convention",
    "convention_of",
]
