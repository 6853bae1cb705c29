"""The TF-slim / TPU cell format of NASNet, PNASNet and AmoebaNet (tensorflow/models
research/slim/nets/nasnet, tensorflow/tpu models/official/amoeba_net/model_specs.py): per cell,
`operations` (two per block), `hiddenstate_indices` (the state each reads: 0 is h0, the squeezed
cell below, 1 is h1, the cell two below, k >= 2 block k - 2) and `used_hiddenstates` (1 for a state
the cell does not output). nasc reads and writes it as JSON:

    {"genotype": "nasnet_a", "convention": "nasnet",
     "cells": {"normal": {"operations": [...], "hiddenstate_indices": [...], "used_hiddenstates": [...]},
               "reduction": {...}}}

Reading never evaluates anything: JSON, or a Python literal of the same shape (`ast.literal_eval`).
"""

from __future__ import annotations

import ast
import json

from nasc.compiler import ir
from nasc.compiler.conventions import CONVENTIONS
from nasc.diagnostics import Diagnostic, NascError, did_you_mean
from nasc.fileio import MARK
from nasc.version import __version__

# nasc's op names → the reference's.
TO_REFERENCE = {
    "identity": "none",
    "conv_1x1": "1x1",
    "conv_3x3": "3x3",
    "conv_1x3_3x1": "1x3_3x1",
    "conv_1x7_7x1": "1x7_7x1",
    "dil_conv_3x3": "dilated_3x3_rate_2",
    "avg_pool_3x3": "avg_pool_3x3",
    "max_pool_3x3": "max_pool_3x3",
    "max_pool_5x5": "max_pool_5x5",
    "max_pool_7x7": "max_pool_7x7",
    "sep_conv_3x3": "separable_3x3_2",
    "sep_conv_5x5": "separable_5x5_2",
    "sep_conv_7x7": "separable_7x7_2",
}
FROM_REFERENCE = {reference: name for name, reference in TO_REFERENCE.items()}
FIELDS = ("operations", "hiddenstate_indices", "used_hiddenstates")


class FormatError(ValueError):
    """A genotype the format cannot express; the message says what."""


def write_nasnet(genotype: ir.Genotype) -> str:
    """The genotype in the reference's cell format (JSON), or FormatError naming what cannot be said."""
    if not CONVENTIONS[genotype.convention].nasnet_family:
        raise FormatError(
            "the nasnet format describes NASNet-family cells; this genotype is read by "
            f"`{genotype.convention}`"
        )
    cells = {}
    for cell in genotype.cells:
        states = {name: index for index, name in enumerate(cell.inputs)}
        operations, indices = [], []
        for block in cell.blocks:
            if block.combine != "add" or len(block.operands) != 2:
                raise FormatError(
                    f"{cell.kind} block {block.target} combines with `{block.combine}`; "
                    "the format adds two ops"
                )
            for operand in block.operands:
                if operand.op not in TO_REFERENCE:
                    raise FormatError(
                        f"the format has no name for `{operand.op}` ({cell.kind} {block.target})"
                    )
                operations.append(TO_REFERENCE[operand.op])
                indices.append(states[operand.input])
            states[block.target] = len(states)
        outputs = set(cell.output.members)
        used = [0 if name in outputs else 1 for name in states]
        order = [name for name in states if name in outputs]
        if list(cell.output.members) != order:
            raise FormatError(
                f"the {cell.kind} cell outputs {', '.join(cell.output.members)}; the format concatenates in "
                f"state order ({', '.join(order)})"
            )
        cells[cell.kind] = {
            "operations": operations,
            "hiddenstate_indices": indices,
            "used_hiddenstates": used,
        }
    document = {
        "generated_by": f"{MARK} {__version__}",
        "genotype": genotype.name,
        "convention": genotype.convention,
        "cells": cells,
    }
    return json.dumps(document, indent=2) + "\n"


def read_nasnet(text: str, filename: str = "<input>") -> ir.Genotype:
    """A genotype from the reference's cell format; NascError with one clear line otherwise."""

    def fail(message: str, hint: str | None = None) -> NascError:
        return NascError([Diagnostic(message, None, filename, hint)])

    try:
        document = json.loads(text)
    except (RecursionError, MemoryError) as error:
        raise fail(f"not a cell file: {type(error).__name__} (nested too deeply)") from None
    except ValueError as error:
        if not isinstance(error, json.JSONDecodeError):  # e.g. an integer past the digit limit
            raise fail(f"not a cell file: {str(error).split(';')[0]}") from None
        try:
            document = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
            raise fail(
                f"neither JSON nor a Python literal: {type(error).__name__}",
                'expected {"genotype": NAME, "cells": {KIND: {"operations": [...], ...}}}',
            ) from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), dict):
        raise fail('expected an object with "cells"', 'e.g. {"genotype": "mine", "cells": {"normal": {...}}}')
    name = document.get("genotype", "imported")
    convention = document.get("convention", "nasnet")
    if not isinstance(name, str) or ir.identifier_problem(name):
        raise fail(f"genotype name {name!r} is not a nasc name")
    if convention not in CONVENTIONS or not CONVENTIONS[convention].nasnet_family:
        known = [name for name, c in CONVENTIONS.items() if c.nasnet_family]
        raise fail(
            f"convention {convention!r} does not read this format", did_you_mean(str(convention), known)
        )
    cells = []
    for kind, spec in document["cells"].items():
        if not isinstance(kind, str) or ir.identifier_problem(kind) or not isinstance(spec, dict):
            raise fail(f"cell {kind!r} is not a cell kind with its fields")
        cells.append(_cell(kind, spec, fail))
    try:
        return ir.Genotype(
            name, tuple(cells), (ir.MetaEntry("imported_from", filename),), convention=convention
        )
    except ValueError as error:
        raise fail(str(error)) from None


def _cell(kind: str, spec: dict, fail) -> ir.Cell:
    values = {}
    for field in FIELDS:
        value = spec.get(field)
        if not isinstance(value, list) or not all(
            isinstance(item, str if field == "operations" else int) and not isinstance(item, bool)
            for item in value
        ):
            raise fail(
                f"{kind}: `{field}` must be a list of {'op names' if field == 'operations' else 'integers'}"
            )
        values[field] = value
    operations, indices, used = (
        values["operations"],
        values["hiddenstate_indices"],
        values["used_hiddenstates"],
    )
    if not operations or len(operations) % 2 or len(indices) != len(operations):
        raise fail(f"{kind}: `operations` and `hiddenstate_indices` must be of one even, non-zero length")
    steps = len(operations) // 2
    if len(used) != steps + 2:
        raise fail(f"{kind}: `used_hiddenstates` must have {steps + 2} entries (2 inputs, {steps} blocks)")
    names = ["h0", "h1"] + [f"h{i + 2}" for i in range(steps)]
    blocks = []
    for step in range(steps):
        operands = []
        for op, index in zip(
            operations[2 * step : 2 * step + 2], indices[2 * step : 2 * step + 2], strict=True
        ):
            if op not in FROM_REFERENCE:
                raise fail(f"{kind}: unknown op {op!r}", did_you_mean(op, FROM_REFERENCE))
            if not 0 <= index < step + 2:
                raise fail(f"{kind}: block {step} reads state {index}, which does not exist yet")
            operands.append(ir.Operand(FROM_REFERENCE[op], names[index]))
        blocks.append(ir.Block(names[step + 2], "add", tuple(operands)))
    members = tuple(name for name, flag in zip(names, used, strict=True) if not flag)
    if not members:
        raise fail(f"{kind}: every state is marked used; the cell would output nothing")
    return ir.Cell(kind, ("h0", "h1"), tuple(blocks), ir.Output(members))
