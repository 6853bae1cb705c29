"""Pictures of cells in the style of the paper's Figure 4, as Graphviz DOT text.

Inputs at the bottom, each op a box coloured by kind, combines as ellipses, the output concat at the
top. `lowered=True` adds what the compiler inserts under the NASNet family of conventions (NASNet,
PNASNet, AmoebaNet): the squeeze of x1, the adjustment of x2, strides, the 1x1 adapters inside
identity and pools, the factorized reductions of output members, and what an op means where the
convention gives it another meaning (AmoebaNet's bottlenecked convolutions). PNASNet's one cell is
drawn in both its roles. Other families (DARTS) draw each op's meaning and each input's role. Every
label is built from checked identifiers and registry names, and quoted for DOT.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import textwrap
import zlib

from nasc.compiler import ir
from nasc.compiler.conventions import Convention, convention_of
from nasc.compiler.lower import CellGraph, lower
from nasc.fileio import MARK, PNG_IHDR_END, PNG_SIGNATURE
from nasc.version import __version__

FAMILY_COLOURS = {
    "separable": "#fde58c",
    "conv": "#f7b77b",
    "bottleneck": "#f7b77b",
    "pool": "#a9d3f5",
    "identity": "#dddddd",
}
COMBINE_COLOUR = "#9ed99e"
OUTPUT_COLOUR = "#f4b6c2"
INPUT_COLOUR = "#ffffff"
ADAPTER_COLOUR = "#e7d3f5"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _drawing(lines: list[str], prefix: str):
    """`node(name, label, **attributes)` and `edge(a, b, label=None)`, appending DOT to `lines`, every
    name under `prefix` (one cluster per cell) and every label quoted."""

    def node(name: str, label: str, **attributes: str) -> None:
        extra = "".join(f", {key}={_quote(value)}" for key, value in attributes.items())
        lines.append(f"    {_quote(prefix + name)} [label={_quote(label)}{extra}];")

    def edge(a: str, b: str, label: str | None = None) -> None:
        tail = f" [label={_quote(label)}, fontsize=10]" if label else ""
        lines.append(f"    {_quote(prefix + a)} -> {_quote(prefix + b)}{tail};")

    return node, edge


def _cell_lines(
    cell: ir.Cell, graph: CellGraph, lowered: bool, prefix: str, convention: Convention, role: str
) -> list[str]:
    title = f"{cell.kind} cell" + (f" (stride {graph.stride})" if graph.stride > 1 else "")
    if role != cell.kind:  # PNASNet: one cell drawn in each of its roles
        title = f"{cell.kind} cell as the {role} cell (stride {graph.stride})"
    lines = [
        f"  subgraph {_quote('cluster_' + prefix.rstrip('.'))} {{",
        f"    label={_quote(title)};",
        '    fontsize=16; style=rounded; color="#999999";',
    ]

    node, edge = _drawing(lines, prefix)

    h0, h1 = cell.inputs
    if lowered:
        node("x1", "x1 (cell below)", shape="box", style="filled", fillcolor=INPUT_COLOUR)
        node("x2", "x2 (two cells below)", shape="box", style="filled", fillcolor=INPUT_COLOUR)
        node(
            "squeeze",
            "squeeze: ReLU, 1x1 conv to F, BN",
            shape="box",
            style="filled,dashed",
            fillcolor=ADAPTER_COLOUR,
        )
        node(
            "adjust",
            "adjust x2: factorized reduction if larger,\n1x1 conv if wider; x1 itself if absent",
            shape="box",
            style="filled,dashed",
            fillcolor=ADAPTER_COLOUR,
        )
        edge("x1", "squeeze")
        edge("x2", "adjust")
    node(h0, f"{h0}", shape="box", style="filled", fillcolor=INPUT_COLOUR)
    node(h1, f"{h1}", shape="box", style="filled", fillcolor=INPUT_COLOUR)
    if lowered:
        edge("squeeze", h0)
        edge("adjust", h1)
    lines.append(f"    {{rank=same; {_quote(prefix + h0)}; {_quote(prefix + h1)};}}")
    for block in graph.blocks:
        for op in block.operands:
            label = op.spec.name
            if lowered:
                if op.stride > 1:
                    label += f"\nstride {op.stride}"
                if op.spec.family == "identity":
                    label += "\nReLU, 1x1 conv, BN" + (" (strided)" if op.stride > 1 else " if C ≠ F")
                elif op.spec.family == "pool" and op.in_channels.h1:
                    label += "\n+ 1x1 conv, BN if C(h1) ≠ F"
                elif op.in_channels.filters > 1:
                    label += f"\n{op.in_channels.describe()} → F"
                if op.spec.name in convention.op_specs:  # the op means something else here: say what
                    label += "\n" + textwrap.fill(convention.ops[op.spec.name], 36)
            node(op.attr, label, shape="box", style="filled", fillcolor=FAMILY_COLOURS[op.spec.family])
            edge(op.state, op.attr)
        # The combine node is the block's state: later ops read from it.
        node(
            block.target,
            f"{block.combine.name}\n{block.target}",
            shape="ellipse",
            style="filled",
            fillcolor=COMBINE_COLOUR,
        )
        for op in block.operands:
            edge(op.attr, block.target)
    node(
        "output",
        f"concat\n({', '.join(o.member for o in graph.outputs)})",
        shape="ellipse",
        style="filled",
        fillcolor=OUTPUT_COLOUR,
    )
    for output in graph.outputs:
        source = output.member
        if lowered and output.adapter_attr:
            reduce = f"out_{output.member}"
            condition = f"stride {output.stride}" if output.stride > 1 else "if its shape differs"
            node(
                reduce,
                f"factorized reduction\n({condition})",
                shape="box",
                style="filled,dashed",
                fillcolor=ADAPTER_COLOUR,
            )
            edge(source, reduce)
            source = reduce
        edge(source, "output")
    lines.append("  }")
    return lines


def _family(op: str) -> str:
    """The colour family of an op by its name, for conventions other than NASNet."""
    if op.startswith(("sep_", "dil_")):
        return "separable"
    if "pool" in op:
        return "pool"
    return "identity" if op == "identity" else "conv"


def _convention_cell_lines(cell: ir.Cell, convention: Convention, lowered: bool, prefix: str) -> list[str]:
    """A cell under a convention other than NASNet: its inputs' preprocessing and each op's meaning
    (from the convention's own table) when lowered, so that an op that means something else here
    than under NASNet (e.g. DARTS's separable `dil_conv_3x3`) says so in the picture."""
    stride = convention.stride(cell.kind)
    title = f"{cell.kind} cell" + (f" (stride {stride} on the inputs' ops)" if stride > 1 else "")
    lines = [
        f"  subgraph {_quote('cluster_' + cell.kind)} {{",
        f"    label={_quote(title)};",
        '    fontsize=16; style=rounded; color="#999999";',
    ]

    node, edge = _drawing(lines, prefix)

    for name, role in zip(cell.inputs, convention.input_roles, strict=False):
        node(
            name,
            f"{name}\n({role})" if lowered else name,
            shape="box",
            style="filled",
            fillcolor=INPUT_COLOUR,
        )
    lines.append("    {rank=same; " + " ".join(f"{_quote(prefix + n)};" for n in cell.inputs) + "}")
    for block in cell.blocks:
        for side, operand in enumerate(block.operands):
            attr = f"{block.target}_{side}"
            label = operand.op
            if lowered:
                if stride > 1 and operand.input in cell.inputs:
                    label += f"\nstride {stride}"
                label += "\n" + textwrap.fill(convention.ops[operand.op], 36)
            node(attr, label, shape="box", style="filled", fillcolor=FAMILY_COLOURS[_family(operand.op)])
            edge(operand.input, attr)
            edge(attr, block.target)
        node(
            block.target,
            f"{block.combine}\n{block.target}",
            shape="ellipse",
            style="filled",
            fillcolor=COMBINE_COLOUR,
        )
    node(
        "output",
        f"concat\n({', '.join(cell.output.members)})",
        shape="ellipse",
        style="filled",
        fillcolor=OUTPUT_COLOUR,
    )
    for member in cell.output.members:
        edge(member, "output")
    lines.append("  }")
    return lines


def to_dot(genotype: ir.Genotype, cells: str = "all", lowered: bool = False) -> str:
    """DOT text for the chosen cells ("all", or one kind)."""
    convention = convention_of(genotype)
    graphs = lower(genotype) if convention.nasnet_family else {}
    chosen = [cell for cell in genotype.cells if cells in ("all", cell.kind)]
    if not chosen:
        raise ValueError(
            f"genotype {genotype.name} has no {cells!r} cell; it has "
            f"{', '.join(c.kind for c in genotype.cells)}"
        )
    lines = [
        f"// {MARK} {__version__} from genotype {genotype.name}",
        f"digraph {_quote(genotype.name)} {{",
        "  rankdir=BT;",
        "  compound=true;",
        '  node [fontname="Helvetica", fontsize=12];',
        '  edge [color="#555555"];',
        f"  label={_quote(f'{genotype.name} · {convention.name}' + (' (lowered)' if lowered else ''))}; "
        "labelloc=t; fontsize=18;",
    ]
    for cell in chosen:
        if not convention.nasnet_family:
            lines += _convention_cell_lines(cell, convention, lowered, f"{cell.kind}.")
            continue
        roles = [role for role, kind in convention.roles if kind == cell.kind]
        for role in roles:
            prefix = f"{cell.kind}." if len(roles) == 1 else f"{cell.kind}.{role}."
            lines += _cell_lines(cell, graphs[role], lowered, prefix, convention, role)
    lines.append("}")
    return "\n".join(lines) + "\n"


FORMATS = (".svg", ".png", ".dot", ".gv")

DOT_INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS), `conda install graphviz`; or write DOT text with -o FILE.dot"
)


class RenderError(Exception):
    """Graphviz is missing or failed; the message says what to do."""


def render(dot_text: str, suffix: str) -> bytes:
    """The picture in the format of `suffix` (.svg, .png, or DOT text for .dot/.gv), marked as nasc's
    (an SVG comment, a PNG tEXt chunk) so that nasc may later replace it without --force."""
    if suffix in (".dot", ".gv"):
        return dot_text.encode()
    dot = shutil.which("dot")
    if dot is None:
        raise RenderError(f"the `dot` program (Graphviz) is not installed; {DOT_INSTALL_HINT}")
    rendered = subprocess.run(
        [dot, f"-T{suffix[1:]}"], input=dot_text.encode(), capture_output=True, timeout=60
    )
    if rendered.returncode != 0:
        reason = rendered.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"dot failed: {reason[0] if reason else 'no output'}")
    data = rendered.stdout
    if suffix == ".svg":
        return _mark_svg(data)
    return _mark_png(data)


def _mark_svg(data: bytes) -> bytes:
    """The mark as the first line's comment, after the XML declaration (which must come first)."""
    comment = f"<!-- {MARK} {__version__} -->".encode()
    if data.startswith(b"<?xml"):
        end = data.find(b"?>") + 2
        return data[:end] + comment + b"\n" + data[end:].lstrip(b"\n")
    return comment + b"\n" + data


def _mark_png(data: bytes) -> bytes:
    """Insert a tEXt chunk (Software: Generated by nasc) right after the IHDR chunk."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return data
    body = b"tEXt" + b"Software\0" + f"{MARK} {__version__}".encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    return data[:PNG_IHDR_END] + chunk + data[PNG_IHDR_END:]
