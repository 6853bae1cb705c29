"""The NASNet convention (Zoph et al. 2018; TF-slim nets/nasnet): the default, exact against the
reference. Its rules are written out in docs/reference.md; compiler/lower.py and
compiler/emit_nasnet.py implement them."""

from __future__ import annotations

from types import MappingProxyType

from nasc.compiler.conventions.base import Convention, NasnetFamily
from nasc.compiler.presets import DATA, PRESETS
from nasc.compiler.registry import NASNET_OPS

NASNET = Convention(
    name="nasnet",
    title="NASNet",
    summary="NASNet (Zoph et al. 2018): normal and reduction cells, TF-slim semantics",
    reference="tensorflow/models research/slim/nets/nasnet (nasnet.py, nasnet_utils.py)",
    cell_kinds=("normal", "reduction"),
    input_roles=("from the cell below", "from the cell two below"),
    kind_strides=(("normal", 1), ("reduction", 2)),
    ops=MappingProxyType({name: spec.description for name, spec in NASNET_OPS.items()}),
    presets=PRESETS,
    data=DATA,
    backend=NasnetFamily(),
)
