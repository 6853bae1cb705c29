"""The contract every compiled module keeps, whatever its convention: written down once, as types,
and held by tests/test_contract.py for every file in genotypes/. `nasc train`, `stats`, `export` and
the command line use emitted modules through these names only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class CompiledNetwork(Protocol):
    """The network `create_model` returns (an `nn.Module`), timm's interface where timm has one."""

    num_classes: int
    num_features: int  # channels before the classifier
    feature_info: list[dict[str, object]]  # per stage: num_chs, reduction, module (an attribute name)
    cell_names: tuple[str, ...]  # each cell's attribute, in order: the reference's names (cell_stem_0, …)

    @property
    def cells(self) -> list[nn.Module]:
        """Every cell, stem cells included, in order; each has `kind` ("normal", "reduction")."""
        ...

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits; (logits, aux logits) in training when built with the aux head."""
        ...

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's output, unpooled."""
        ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def forward_intermediates(
        self, x: torch.Tensor, indices: int | list[int] | None = None, intermediates_only: bool = False
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The maps feature_info lists (or the chosen ones), and the final features."""
        ...

    def get_classifier(self) -> nn.Module: ...

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier; num_classes=0 with global_pool="" leaves forward unpooled."""
        ...

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute cells in the backward pass: the same gradients, less memory."""
        ...

    def set_channels_last(self, enable: bool = True) -> None:
        """Channels-last memory for parameters and activations (the input converted at the stem)."""
        ...

    def fuse(self) -> nn.Module:
        """A copy for inference: batch norms folded, channels-last; the same function in eval."""
        ...

    def set_drop_path_progress(self, fraction: float) -> None:
        """How far training has come (0 → 1); each convention owns its drop-path schedule."""
        ...

    def drop_path_keep_probs(self) -> list[float]: ...


@runtime_checkable
class CompiledModule(Protocol):
    """The emitted file, imported."""

    GENOTYPE: str
    CONVENTION: str
    STRUCTURAL_HASH: str
    NASC_VERSION: str
    SOURCE_FILE: str
    METADATA: Mapping[str, Any]
    # preset name → a keyword-built frozen dataclass: `network` (the class, the architecture) apart from
    # the data and training settings `image_size`, `num_classes`, `drop_path_keep_prob`
    PRESETS: Mapping[str, Any]
    DEFAULT_PRESET: str
    AuxHeadTooSmall: type[ValueError]  # raised when the images are too small for the aux head

    def create_model(
        self,
        preset: Any = ...,
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        drop_rate: float | None = None,
        global_pool: str = "avg",
        aux_head: bool = False,
        drop_path_keep_prob: float | None = None,
        image_size: int | None = None,
        weights: str | None = None,
    ) -> CompiledNetwork:
        """The preset's network; other depths and widths are compiled, not built from a preset."""
        ...
