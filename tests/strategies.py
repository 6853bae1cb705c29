"""Hypothesis strategies over the NASNet search space."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from nasc.compiler import ir
from nasc.compiler.space import NASNET_SPACE, SearchSpace

comment_text = st.text(alphabet=string.ascii_letters + string.digits + " #\"'(){}=,.é", max_size=30).map(
    lambda s: ("# " + s).rstrip()
)
comments = st.builds(ir.Comments, st.lists(comment_text, max_size=2).map(tuple), st.none() | comment_text)
meta_values = (
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20).filter(
        lambda s: all(ord(c) >= 0x20 or c in "\n\r\t" for c in s)
    )
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
)
meta_keys = st.sampled_from(["paper", "reward", "seed", "step", "note", "search_space", "run"])


@st.composite
def choices(draw, space: SearchSpace = NASNET_SPACE) -> list[int]:
    return [draw(st.integers(0, d.choices - 1)) for d in space.decisions()]


@st.composite
def genotypes(draw, space: SearchSpace = NASNET_SPACE, with_comments: bool = True) -> ir.Genotype:
    """A random valid genotype of the space, with random metadata and comments."""
    plain = space.decode(draw(choices(space)), name=draw(st.sampled_from(["g", "sampled", "cell_7"])))
    keys = draw(st.lists(meta_keys, unique=True, max_size=4))
    metadata = tuple(
        ir.MetaEntry(k, draw(meta_values), draw(comments) if with_comments else ir.NO_COMMENTS) for k in keys
    )
    if not with_comments:
        return ir.Genotype(plain.name, plain.cells, metadata)
    cells = []
    for cell in plain.cells:
        blocks = tuple(ir.Block(b.target, b.combine, b.operands, draw(comments)) for b in cell.blocks)
        output = ir.Output(cell.output.members, comments=draw(comments))
        cells.append(ir.Cell(cell.kind, cell.inputs, blocks, output, draw(comments), draw(comments)))
    return ir.Genotype(
        plain.name,
        tuple(cells),
        metadata,
        draw(comments),
        draw(comments) if metadata else ir.NO_COMMENTS,
        draw(comments) if metadata else ir.NO_COMMENTS,
        tuple(draw(st.lists(comment_text, max_size=2))),
    )
