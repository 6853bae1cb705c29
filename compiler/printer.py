"""The canonical printer: one layout for every genotype, comments and metadata kept.

`format(parse(text))` is stable, and parsing it gives back the same IR. The search controller
writes every sampled cell through this printer.
"""

from __future__ import annotations

from nasc.compiler import ir

DEFAULT_CONVENTION = "nasnet"

INDENT = "    "
# The escapes the grammar reads; the IR admits no other control characters in strings.
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _with_trailing(line: str, comments: ir.Comments) -> str:
    return f"{line}  {comments.trailing}" if comments.trailing else line


def _leading(comments: ir.Comments, indent: str) -> list[str]:
    return [indent + text for text in comments.leading]


def format_value(value: ir.MetaValue) -> str:
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    return repr(value)


def format_block(block: ir.Block) -> str:
    operands = ", ".join([f"{operand.op}({operand.input})" for operand in block.operands])
    return f"{block.target} = {block.combine}({operands})"


def format_output(output: ir.Output) -> str:
    return f"return {output.combine}({', '.join(output.members)})"


def cell_lines(cell, statements: list[tuple[str, ir.Comments]]) -> list[str]:
    """A cell's lines (of a genotype or a space): its header, each statement's text with its
    comments, its output and its closing brace."""
    lines = _leading(cell.comments, "")
    lines.append(_with_trailing(f"{cell.kind}({', '.join(cell.inputs)}) {{", cell.comments))
    for text, comments in statements:
        if comments is ir.NO_COMMENTS:  # a machine-written cell: every block
            lines.append(INDENT + text)
            continue
        lines += _leading(comments, INDENT)
        lines.append(_with_trailing(INDENT + text, comments))
    lines += _leading(cell.output.comments, INDENT)
    lines.append(_with_trailing(INDENT + format_output(cell.output), cell.output.comments))
    lines += _leading(cell.close_comments, INDENT)
    lines.append(_with_trailing("}", cell.close_comments))
    return lines


def _cell(cell: ir.Cell) -> list[str]:
    return cell_lines(cell, [(format_block(block), block.comments) for block in cell.blocks])


def metadata_section(source) -> list[str]:
    """The `meta { ... }` lines of a genotype or a space; none where it has no metadata."""
    has_meta_comments = source.meta_comments != ir.NO_COMMENTS or source.meta_close_comments != ir.NO_COMMENTS
    if not (source.metadata or has_meta_comments):
        return []
    meta = _leading(source.meta_comments, "")
    meta.append(_with_trailing("meta {", source.meta_comments))
    for entry in source.metadata:
        meta += _leading(entry.comments, INDENT)
        meta.append(_with_trailing(f"{INDENT}{entry.key} = {format_value(entry.value)}", entry.comments))
    meta += _leading(source.meta_close_comments, INDENT)
    meta.append(_with_trailing("}", source.meta_close_comments))
    return meta


def format_genotype(genotype: ir.Genotype) -> str:
    sections: list[list[str]] = []
    header = _leading(genotype.comments, "")
    # The default convention is left unsaid, so every NASNet file reads as it always has.
    convention = f" : {genotype.convention}" if genotype.convention != DEFAULT_CONVENTION else ""
    header.append(_with_trailing(f"genotype {genotype.name}{convention}", genotype.comments))
    sections.append(header)
    meta = metadata_section(genotype)
    if meta:
        sections.append(meta)
    sections += [_cell(cell) for cell in genotype.cells]
    if genotype.footer:
        sections.append(list(genotype.footer))
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
