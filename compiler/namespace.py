"""One namespace per emitted scope: every name legal, unique, and never a keyword, builtin or import.

Names from a .cell file are already safe identifiers (the IR checks); the namespace additionally
keeps them from shadowing what the generated code relies on, suffixing `_2`, `_3`, … on a clash.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Hashable, Iterable

_ILLEGAL = re.compile(r"[^A-Za-z0-9_]")


class Namespace:
    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken = set(reserved) | set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
        self._names: dict[Hashable, str] = {}

    def name(self, key: Hashable, wanted: str | None = None) -> str:
        """The name for `key` (one name per object: asking again returns the same name)."""
        if key in self._names:
            return self._names[key]
        base = _ILLEGAL.sub("_", wanted if wanted is not None else str(key)) or "_"
        if base[0].isdigit():
            base = "_" + base
        base = base.lstrip("_") if base.startswith("__") else base
        base = base or "name"
        candidate, counter = base, 1
        while candidate in self._taken:
            counter += 1
            candidate = f"{base}_{counter}"
        self._taken.add(candidate)
        self._names[key] = candidate
        return candidate
