"""Datasets for training and search: CIFAR-10 (torchvision's reader over a directory you give),
ImageNet-style folders (ImageFolder), and the embedded default, scikit-learn's bundled digits.

Every dataset yields (image tensor C×H×W, normalized; label). A validation split is carved from the
training set like the paper's (5,000 of CIFAR-10's 50,000: a tenth), with a fixed split seed so
that every run and every search child sees the same split.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from nasc.compiler.presets import CIFAR10, IMAGENET, DataConfig

VALIDATION_FRACTION = 0.1  # CIFAR-10: 5,000 of 50,000
SPLIT_SEED = 0
CIFAR_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)


class DataError(Exception):
    """A dataset that is missing or malformed: the message says what is expected and where to get it."""


@dataclass
class DataSplits:
    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    image_size: int


def _split(count: int, fraction: float, seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    """A fixed random partition of range(count) into (kept, held out), held out = round(fraction·count)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, round(fraction * count)) if count > 1 else 0
    return sorted(order[held:]), sorted(order[:held])


# -- augmentation on tensors (drawn from torch's global RNG, so a resumed run replays it) ----------


class RandomCropFlip:
    """Random crop of the zero-padded image, optional horizontal flip, optional cutout."""

    def __init__(self, padding: int, flip: bool, cutout: int = 0) -> None:
        self.padding, self.flip, self.cutout = padding, flip, cutout

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _, height, width = image.shape
        if self.padding:
            padded = torch.nn.functional.pad(image, (self.padding,) * 4)
            top, left = torch.randint(0, 2 * self.padding + 1, (2,)).tolist()
            image = padded[:, top : top + height, left : left + width]
        if self.flip and torch.rand(()).item() < 0.5:
            image = image.flip(-1)
        if self.cutout:
            cy, cx = torch.randint(0, height, ()).item(), torch.randint(0, width, ()).item()
            half = self.cutout // 2
            image = image.clone()
            image[:, max(0, cy - half) : cy + half, max(0, cx - half) : cx + half] = 0
        return image


class TensorImages(Dataset):
    """Images held in memory as a float tensor N×C×H×W (already normalized)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


# -- digits (embedded) ------------------------------------------------------------------------------


def load_digits(
    image_size: int = 16,
    test_fraction: float = 0.2,
    val_fraction: float = VALIDATION_FRACTION,
    augment: bool = True,
) -> DataSplits:
    """scikit-learn's 1,797 real 8×8 handwritten digits, brought to `image_size`² and to 3 channels.

    Test: a fixed fifth; validation: a tenth of the rest. Augmentation: small translations (no
    flips: digits are not mirror-symmetric)."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(
        images, size=(image_size, image_size), mode="bilinear", align_corners=False
    ).repeat(1, 3, 1, 1)
    labels = torch.tensor(digits.target, dtype=torch.long)
    rest, test = _split(len(labels), test_fraction)
    train, val = _split(len(rest), val_fraction, SPLIT_SEED + 1)
    train, val = [rest[i] for i in train], [rest[i] for i in val]
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    shift = max(1, image_size // 8)
    train_transform = RandomCropFlip(padding=shift, flip=False) if augment else None
    return DataSplits(
        name="digits",
        train=TensorImages(images[train], labels[train], train_transform),
        val=TensorImages(images[val], labels[val]),
        test=TensorImages(images[test], labels[test]),
        num_classes=10,
        image_size=image_size,
    )


# -- CIFAR-10 ------------------------------------------------------------------------------------------


def _cifar_class():
    from torchvision.datasets import CIFAR10

    class LocalCIFAR10(CIFAR10):
        """torchvision's CIFAR-10 reader over files already on disk: present and loadable is enough
        (checksums would refuse every subset or re-packing of the data)."""

        def _check_integrity(self) -> bool:
            base = os.path.join(self.root, self.base_folder)
            return all(
                os.path.isfile(os.path.join(base, name)) for name, _ in self.train_list + self.test_list
            )

        def _load_meta(self) -> None:
            import pickle

            with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as handle:
                self.classes = pickle.load(handle, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    return LocalCIFAR10


def _cifar_help(data_dir: str) -> str:
    return (
        f"expected the CIFAR-10 python version under {data_dir}: cifar-10-batches-py/ with "
        f"{', '.join(CIFAR_FILES)} (download cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it there)"
    )


def load_cifar10(
    data_dir: str | os.PathLike[str] | None,
    cutout: int = 0,
    augment: bool = True,
    val_fraction: float = VALIDATION_FRACTION,
) -> DataSplits:
    """CIFAR-10 with the paper's augmentation: random 32×32 crop of the 4-pixel-padded image,
    horizontal flip, per-channel normalization, optional cutout."""
    from torchvision import transforms

    if data_dir is None:
        raise DataError("--data-dir is required for cifar10: " + _cifar_help("DIR"))
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory; " + _cifar_help(str(root)))
    base = root / "cifar-10-batches-py"
    if not base.is_dir() and (root / "data_batch_1").is_file():
        root = root.parent  # the user pointed at cifar-10-batches-py itself
        base = root / "cifar-10-batches-py"
    missing = [name for name in CIFAR_FILES if not (base / name).is_file()]
    if missing:
        raise DataError(f"{base} lacks {', '.join(missing)}; " + _cifar_help(str(root)))
    normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR10.mean, CIFAR10.std)])
    train_transform = (
        transforms.Compose([normalize, RandomCropFlip(4, flip=True, cutout=cutout)]) if augment else normalize
    )
    reader = _cifar_class()
    try:
        train_full = reader(str(root), train=True, transform=train_transform)
        eval_full = reader(str(root), train=True, transform=normalize)
        test = reader(str(root), train=False, transform=normalize)
    except Exception as error:  # a truncated or foreign pickle, wrong array sizes, ...
        raise DataError(
            f"cannot read CIFAR-10 from {base}: {str(error).splitlines()[0]}; " + _cifar_help(str(root))
        ) from None
    train, val = _split(len(train_full), val_fraction)
    return DataSplits("cifar10", Subset(train_full, train), Subset(eval_full, val), test, 10, 32)


# -- ImageNet-style folders ---------------------------------------------------------------------------


def load_image_folder(
    data_dir: str | os.PathLike[str] | None,
    image_size: int = 224,
    augment: bool = True,
    val_fraction: float = VALIDATION_FRACTION,
    evaluation: DataConfig = IMAGENET,
) -> DataSplits:
    """DIR/train/<class>/*.jpg (and DIR/val/<class>/*.jpg as the test set, if present; otherwise a
    fixed tenth of train is the test set). Inception-style augmentation: random resized crop + flip.
    Evaluation images as the preset's pretrained_cfg says (`evaluation`): resized to
    image_size / crop_pct with its interpolation, centre-cropped, normalized with its mean and std."""
    from torchvision import datasets, transforms

    if data_dir is None:
        raise DataError("--data-dir is required for imagefolder: DIR/train/<class>/<image> (and DIR/val/...)")
    root = Path(data_dir)
    train_dir = root / "train" if (root / "train").is_dir() else root
    if not train_dir.is_dir():
        raise DataError(
            f"{root} is not a directory; expected DIR/train/<class>/<image> and DIR/val/<class>/<image>"
        )
    normalize = transforms.Normalize(evaluation.mean, evaluation.std)
    interpolation = transforms.InterpolationMode(evaluation.interpolation)
    train_tf = (
        transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        )
        if augment
        else None
    )
    eval_tf = transforms.Compose(
        [
            transforms.Resize(int(image_size / evaluation.crop_pct), interpolation=interpolation),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            normalize,
        ]
    )
    try:
        train_full = datasets.ImageFolder(str(train_dir), transform=train_tf or eval_tf)
        eval_full = datasets.ImageFolder(str(train_dir), transform=eval_tf)
        has_val = (root / "val").is_dir() and train_dir != root
        test_full = datasets.ImageFolder(str(root / "val"), transform=eval_tf) if has_val else None
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(
            f"cannot read image folders under {root}: {error}; expected DIR/train/<class>/<image>"
        ) from None
    indices = list(range(len(train_full)))
    if test_full is None:
        indices, test_indices = _split(len(train_full), val_fraction, SPLIT_SEED + 2)
        test: Dataset = Subset(eval_full, test_indices)
    else:
        test = test_full
    keep, held = _split(len(indices), val_fraction)
    train = Subset(train_full, [indices[i] for i in keep])
    val = Subset(eval_full, [indices[i] for i in held])
    return DataSplits("imagefolder", train, val, test, len(train_full.classes), image_size)


def load_dataset(
    name: str,
    data_dir: str | None = None,
    *,
    image_size: int | None = None,
    cutout: int = 0,
    augment: bool = True,
    evaluation: DataConfig = IMAGENET,
) -> DataSplits:
    if name == "digits":
        return load_digits(image_size or 16, augment=augment)
    if name == "cifar10":
        return load_cifar10(data_dir, cutout=cutout, augment=augment)
    if name == "imagefolder":
        return load_image_folder(data_dir, image_size or 224, augment=augment, evaluation=evaluation)
    raise DataError(f"unknown dataset {name!r}; choose digits, cifar10 or imagefolder")


def collate(samples: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*samples, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)
