"""Small datasets in the standard on-disk formats, made by the tests (nothing is downloaded)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(
    directory: Path,
    images: np.ndarray,
    labels: Sequence[int],
    test_images: np.ndarray,
    test_labels: Sequence[int],
) -> Path:
    """Write N×32×32×3 uint8 images in the CIFAR-10 python format, the format torchvision reads."""
    base = directory / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(labels)), 5)
    for number, chunk in enumerate(chunks, start=1):
        entry = {
            "data": images[chunk].transpose(0, 3, 1, 2).reshape(len(chunk), -1),
            "labels": [int(labels[i]) for i in chunk],
            "batch_label": f"training batch {number} of 5",
        }
        (base / f"data_batch_{number}").write_bytes(pickle.dumps(entry))
    test = {
        "data": test_images.transpose(0, 3, 1, 2).reshape(len(test_labels), -1),
        "labels": [int(x) for x in test_labels],
        "batch_label": "testing batch 1 of 1",
    }
    (base / "test_batch").write_bytes(pickle.dumps(test))
    meta = {"label_names": CIFAR_CLASSES, "num_cases_per_batch": len(chunks[0]), "num_vis": 3072}
    (base / "batches.meta").write_bytes(pickle.dumps(meta))
    return base


def colour_images(count: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """Images whose class is their dominant colour channel pattern: learnable, like a real task."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).tolist()
    images = rng.integers(0, 60, (count, 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, :, :, label % 3] += np.uint8(100 + 15 * (label // 3))
    return images, labels


def write_image_folder(root: Path, per_class: int = 4, classes: int = 3, size: int = 40) -> Path:
    """root/train/<class>/*.png and root/val/<class>/*.png."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", max(1, per_class // 2))):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root
