"""What every emitter shares: the one Jinja environment (strict, whitespace-trimmed, never
autoescaped for HTML: it writes Python), the literal filter, and class names from .cell names."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import PurePath

import jinja2

from nasc.diagnostics import printable

# A file name safe to cite in the comments of emitted code (each block names its .cell line).
SAFE_FILE_LABEL = re.compile(r"[A-Za-z0-9._-]+\Z")


def py_literal(value: object) -> str:
    """A Python literal for a str/int/float/bool/None (or a tuple of them): repr, never the raw text
    (double-quoted where repr allows it, as the project's formatter writes strings)."""
    if isinstance(value, str):
        literal = repr(value)
        return f'"{literal[1:-1]}"' if literal.startswith("'") and '"' not in value else literal
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(py_literal(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    raise TypeError(f"cannot emit {type(value).__name__} as a literal")


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nasc", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["py"] = py_literal
    return env


def camel(name: str) -> str:
    """A class name from a snake_case .cell name: `nasnet_a` → `NasnetA`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Genotype"


def network_class(genotype_name: str, preset_name: str) -> str:
    """The class of one preset's network: `nasnet_a`, `large` → `NasnetALarge`; a rescaled preset's
    punctuation becomes word breaks (`cifar-2@240` → `NasnetACifar2240`)."""
    return camel(genotype_name) + camel(re.sub(r"\W+", "_", preset_name))


def checked(text: str) -> str:
    """The emitted text, parsed before anyone can import it: a template bug fails the compile."""
    try:
        ast.parse(text)
    except SyntaxError as error:
        raise RuntimeError(f"nasc emitted invalid Python (line {error.lineno}): {error.msg}") from error
    return text


def source_names(source: str | None, genotype_name: str) -> tuple[str, str]:
    """(label, literal) for the .cell file a module is emitted from: the label cites lines in comments
    (the file's name where it is plainly safe, else the genotype's name); the literal is SOURCE_FILE,
    the path escaped where it holds control characters or bytes that are not UTF-8."""
    label = PurePath(source).name if source else genotype_name
    if not SAFE_FILE_LABEL.match(label):
        label = genotype_name
    literal = py_literal(printable(str(source), keep_newlines=False) if source else "<memory>")
    return label, literal
