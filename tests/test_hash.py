"""Structural hash: the same architecture hashes the same; any real change changes it."""

from __future__ import annotations

import pytest

import nasc

NASNET_A = """
genotype nasnet_a
normal(h0, h1) {
    h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))
    h3 = add(sep_conv_5x5(h1), sep_conv_3x3(h1))
    h4 = add(avg_pool_3x3(h0), identity(h1))
    h5 = add(avg_pool_3x3(h1), avg_pool_3x3(h1))
    h6 = add(sep_conv_3x3(h0), identity(h0))
    return concat(h1, h2, h3, h4, h5, h6)
}
reduction(h0, h1) {
    h2 = add(sep_conv_5x5(h0), sep_conv_7x7(h1))
    h3 = add(max_pool_3x3(h0), sep_conv_7x7(h1))
    h4 = add(avg_pool_3x3(h0), sep_conv_5x5(h1))
    h5 = add(identity(h3), avg_pool_3x3(h2))
    h6 = add(sep_conv_3x3(h2), max_pool_3x3(h0))
    return concat(h3, h4, h5, h6)
}
"""

# Same architecture: renamed states and inputs, comments, metadata, layout, operand order inside add,
# independent blocks reordered, output order permuted, cells in the other order.
SAME = """
# a comment
genotype renamed
meta { reward = 0.5 }
reduction(x, y) {
    c = add(avg_pool_3x3(x), sep_conv_5x5(y))
    b = add(sep_conv_7x7(y), max_pool_3x3(x))
    a = add(sep_conv_5x5(x), sep_conv_7x7(y))
    e = add(max_pool_3x3(x), sep_conv_3x3(a))
    d = add(avg_pool_3x3(a), identity(b))  # operands swapped
    return concat(e, d, c, b)
}
normal(x, y) { s6 = add(identity(x), sep_conv_3x3(x))  s5 = add(avg_pool_3x3(y), avg_pool_3x3(y))
  s4 = add(identity(y), avg_pool_3x3(x)) s3 = add(sep_conv_3x3(y), sep_conv_5x5(y))
  s2 = add(sep_conv_3x3(y), sep_conv_5x5(x))
  return concat(s2, s3, y, s4, s5, s6) }
"""


def digest(text: str) -> str:
    return nasc.structural_hash(nasc.parse(text))


def test_hash_is_a_hex_sha256() -> None:
    value = digest(NASNET_A)
    assert len(value) == 64 and int(value, 16) >= 0


def test_same_architecture_same_hash() -> None:
    assert digest(SAME) == digest(NASNET_A)


def test_shipped_file_hashes_like_the_bare_text(nasnet_a_text: str) -> None:
    assert digest(nasnet_a_text) == digest(NASNET_A)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))",
            "h2 = add(sep_conv_5x5(h0), sep_conv_5x5(h1))",
        ),  # op
        (
            "h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))",
            "h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h0))",
        ),  # wiring
        (
            "h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))",
            "h2 = concat(sep_conv_5x5(h0), sep_conv_3x3(h1))",
        ),  # combine
        ("return concat(h1, h2, h3, h4, h5, h6)", "return concat(h2, h3, h4, h5, h6)"),  # output member
        (
            "h5 = add(identity(h3), avg_pool_3x3(h2))",
            "h5 = add(identity(h2), avg_pool_3x3(h3))",
        ),  # op<->input pairing
        (
            "h4 = add(avg_pool_3x3(h0), identity(h1))",
            "h4 = add(avg_pool_3x3(h1), identity(h0))",
        ),  # input order
    ],
)
def test_any_real_change_changes_the_hash(old: str, new: str) -> None:
    assert old in NASNET_A
    assert digest(NASNET_A.replace(old, new, 1)) != digest(NASNET_A)


def test_swapping_cell_kinds_changes_the_hash() -> None:
    swapped = (
        NASNET_A.replace("normal(", "TMP(").replace("reduction(", "normal(").replace("TMP(", "reduction(")
    )
    assert digest(swapped) != digest(NASNET_A)
