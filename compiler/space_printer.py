"""The canonical printer of spaces: the cell printer's layout, with candidates where a cell has one
name. A set is printed by its name where a node named it; one candidate is printed bare."""

from __future__ import annotations

from nasc.compiler.printer import DEFAULT_CONVENTION, _leading, _with_trailing, cell_lines, metadata_section
from nasc.compiler.space_ir import Edge, Node, Space, SpaceCell


def _pick(names: tuple[str, ...], named: str | None) -> str:
    if named is not None:
        return named
    return names[0] if len(names) == 1 else f"[{', '.join(names)}]"


def format_edge(edge: Edge) -> str:
    return f"{_pick(edge.ops, edge.op_set)}({_pick(edge.inputs, None)})"


def format_node(node: Node) -> str:
    edges = ", ".join(format_edge(edge) for edge in node.edges)
    keep = f" keep {node.keep}" if node.keep is not None else ""
    return f"{node.target} = {_pick(node.combines, node.combine_set)}({edges}){keep}"


def _cell(cell: SpaceCell) -> list[str]:
    return cell_lines(cell, [(format_node(node), node.comments) for node in cell.nodes])


def format_space(space: Space) -> str:
    header = _leading(space.comments, "")
    convention = f" : {space.convention}" if space.convention != DEFAULT_CONVENTION else ""
    header.append(_with_trailing(f"space {space.name}{convention}", space.comments))
    sections = [header]
    meta = metadata_section(space)
    if meta:
        sections.append(meta)
    if space.sets:
        lines: list[str] = []
        for declared in space.sets:
            lines += _leading(declared.comments, "")
            lines.append(
                _with_trailing(f"{declared.name} = [{', '.join(declared.members)}]", declared.comments)
            )
        sections.append(lines)
    sections += [_cell(cell) for cell in space.cells]
    if space.footer:
        sections.append(list(space.footer))
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
