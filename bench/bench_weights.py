"""How exactly imported reference weights reproduce the reference: every supported pair, side by side.

    python bench/bench_weights.py [--skip-large]

Each peer is built with random weights and random batch-norm statistics, its state_dict saved and
imported with `nasc weights`, and the logits of peer and compiled network compared in float64
(eval mode, batch 2): the maximum absolute difference over the largest logit. The tests assert the
same pairs below 1e-6 (tests/test_weights.py); this prints the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' re-typed DARTS reference

from tests.darts_reference import NetworkCIFAR, NetworkImageNet, reference_genotypes  # noqa: E402
from tests.test_weights import randomized, relative_difference  # noqa: E402


def peers(skip_large: bool):
    import pretrainedmodels
    import timm

    genotypes = reference_genotypes()
    yield (
        "pretrainedmodels nasnetamobile",
        "nasnet_a",
        "mobile",
        "pretrainedmodels",
        (lambda: pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None)),
        (224,),
    )
    yield (
        "DARTS NetworkCIFAR (DARTS_V2)",
        "darts_v2",
        "cifar",
        "darts",
        (lambda: NetworkCIFAR(36, 10, 20, auxiliary=False, genotype=genotypes["DARTS_V2"])),
        (32, 48),
    )
    yield (
        "DARTS NetworkImageNet (DARTS_V2)",
        "darts_v2",
        "imagenet",
        "darts",
        (lambda: NetworkImageNet(48, 1000, 14, genotype=genotypes["DARTS_V2"])),
        (224,),
    )
    if skip_large:
        return
    yield (
        "pretrainedmodels nasnetalarge",
        "nasnet_a",
        "large",
        "pretrainedmodels",
        (lambda: pretrainedmodels.nasnetalarge(num_classes=1000, pretrained=None)),
        (331,),
    )
    yield (
        "timm pnasnet5large",
        "pnasnet_5",
        "large",
        "timm",
        (lambda: timm.create_model("pnasnet5large", pretrained=False)),
        (331, 160),
    )
    yield (
        "timm nasnetalarge (as shipped)",
        "nasnet_a",
        "large",
        "timm",
        (lambda: timm.create_model("nasnetalarge", pretrained=False)),
        (331,),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import nasc
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import build_network

    with tempfile.TemporaryDirectory() as folder:
        for label, cell, preset, source, make, sizes in peers(args.skip_large):
            torch.manual_seed(0)
            peer = randomized(make())
            checkpoint, out = Path(folder) / "reference.pth", Path(folder) / "imported.pt"
            torch.save(peer.state_dict(), checkpoint)
            command = [sys.executable, "-m", "nasc", "weights", str(ROOT / "genotypes" / f"{cell}.cell")]
            command += [str(checkpoint), "--from", source, "--preset", preset, "-o", str(out), "--force"]
            subprocess.run(command, check=True, capture_output=True)
            genotype = nasc.load(ROOT / "genotypes" / f"{cell}.cell")
            ours = build_network(genotype, EmitOptions(preset=preset), weights=str(out)).model.eval()
            figures = ", ".join(f"{size} px {relative_difference(peer, ours, size):.1e}" for size in sizes)
            print(f"{label} → {cell} {preset}: max |Δlogit| / max |logit| = {figures}")


if __name__ == "__main__":
    main()
