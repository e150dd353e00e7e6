"""image_folder, CIFAR (restricted unpickling) and MNIST (IDX) on files generated here."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from vision_files import write_cifar, write_idx, write_image_folder, write_mnist

from runner import DataError
from runner_vision.components import Cifar10, Cifar100, FashionMnist, ImageFolder, Mnist

# -- image_folder --------------------------------------------------------------------------


def test_image_folder_labels_follow_sorted_class_folders(folder: Path) -> None:
    (folder / "cat" / "notes.txt").write_text("not an image")
    dataset = ImageFolder(root=str(folder)).build()
    assert len(dataset) == 5 and dataset.meta["classes"] == ["cat", "dog"] and dataset.meta["num_classes"] == 2
    image, label = dataset[3]
    assert label == 1 and image.shape == (3, 8, 8) and image.dtype == torch.float32
    assert image[0].unique().tolist() == pytest.approx([40 / 255])


def test_image_folder_options(folder: Path) -> None:
    dataset = ImageFolder(root=str(folder), classes=["dog", "cat"], mode="L", image_size=[4, 6], dtype="uint8").build()
    image, label = dataset[0]
    assert label == 0 and image.shape == (1, 4, 6) and image.dtype == torch.uint8
    assert dataset.meta == {"num_classes": 2, "classes": ["dog", "cat"], "in_channels": 1, "image_size": [4, 6]}


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda root: None, "is not a directory; expected one subfolder per class"),
        (lambda root: (root / "cat").mkdir(parents=True), "holds no images"),
        (lambda root: root.mkdir(), "has no class subfolders"),
    ],
)
def test_image_folder_layout_errors(tmp_path: Path, setup: object, expected: str) -> None:
    root = tmp_path / "images"
    setup(root)  # type: ignore[operator]
    with pytest.raises(DataError, match=expected):
        ImageFolder(root=str(root)).build()


def test_image_folder_missing_class_and_corrupt_image(folder: Path) -> None:
    with pytest.raises(DataError, match=r"has no class folder 'bird'"):
        ImageFolder(root=str(folder), classes=["cat", "bird"]).build()
    (folder / "cat" / "0.png").write_bytes(b"\x89PNG broken")
    dataset = ImageFolder(root=str(folder)).build()
    with pytest.raises(DataError, match=r"0\.png: cannot decode image"):
        dataset[0]


def test_image_folder_refuses_decompression_bombs(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # the 8x8 images are then far too large
    with pytest.raises(DataError, match=r"0\.png: cannot decode image: Image size \(64 pixels\) exceeds limit"):
        ImageFolder(root=str(folder)).build()[0]


# -- CIFAR ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_reads_python_batches(tmp_path: Path, protocol: int) -> None:
    root = write_cifar(tmp_path, "cifar10", per_batch=4, protocol=protocol)
    train, test = (
        Cifar10(root=str(root), split="train").build(),
        Cifar10(root=str(root), split="test", dtype="uint8").build(),
    )
    assert len(train) == 20 and len(test) == 4
    image, label = train[5]  # the second batch, filled with 1
    assert image.shape == (3, 32, 32) and float(image.max()) == pytest.approx(1 / 255) and int(label) == 2
    assert train.meta["classes"][:2] == ["class0", "class1"] and train.meta["image_size"] == [32, 32]
    assert test.tensors[0].dtype == torch.uint8  # uint8 gives the loader its fast path


def test_cifar_folder_may_be_the_root_itself(tmp_path: Path) -> None:
    root = write_cifar(tmp_path, "cifar100")
    dataset = Cifar100(root=str(root / "cifar-100-python"), split="test").build()
    assert len(dataset) == 4 and dataset.meta["num_classes"] == 100


def test_cifar_missing_files_say_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        Cifar10(root=str(tmp_path), split="train").build()
    message = str(caught.value)
    assert "nothing is downloaded" in message and "cifar-10-batches-py" in message and "data_batch_1" in message


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("payload", [{"data": Evil()}, {"data": np.array([Evil()], dtype=object)}])
def test_cifar_batches_cannot_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: object) -> None:
    monkeypatch.chdir(tmp_path)
    root = write_cifar(tmp_path / "data", "cifar10")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR batch file this plugin will read"):
        Cifar10(root=str(root), split="train").build()
    assert not (tmp_path / "pwned").exists()


def test_cifar_batch_with_wrong_content(tmp_path: Path) -> None:
    root = write_cifar(tmp_path, "cifar10")
    batch = {"data": np.zeros((2, 10), dtype=np.uint8), "labels": [0, 1]}
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"test_batch: 'data' must be a uint8 array of shape \(N, 3072\)"):
        Cifar10(root=str(root), split="test").build()


# -- MNIST ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path: Path, compress: bool) -> None:
    root = write_mnist(tmp_path, count=6, compress=compress)
    train = Mnist(root=str(root), split="train").build()
    image, label = train[1]
    assert len(train) == 6 and image.shape == (1, 28, 28) and int(label) == 1
    assert float(image[0, 0, 0]) == pytest.approx((28 * 28 % 256) / 255)
    assert train.meta == {
        "num_classes": 10,
        "classes": [str(i) for i in range(10)],
        "in_channels": 1,
        "image_size": [28, 28],
    }


def test_fashion_mnist_in_torchvisions_layout(tmp_path: Path) -> None:
    write_mnist(tmp_path / "FashionMNIST" / "raw")
    dataset = FashionMnist(root=str(tmp_path), split="test").build()
    assert len(dataset) == 6 and dataset.meta["classes"][9] == "Ankle boot"


def test_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing is downloaded: put the train files train-images-idx3-ubyte"):
        Mnist(root=str(tmp_path), split="train").build()
    write_mnist(tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"header says \(6, 28, 28\)"):
        Mnist(root=str(tmp_path), split="test").build()
    write_idx(images, np.zeros((6, 28), dtype=np.uint8))
    with pytest.raises(DataError, match="expected an IDX file of uint8 with 3 dimensions"):
        Mnist(root=str(tmp_path), split="test").build()


def test_generated_folder_helper_is_deterministic(tmp_path: Path) -> None:
    from runner_vision.shapes import write_shapes

    assert write_shapes(tmp_path / "a", classes=2, per_class={"train": 2}, size=16) == {"train": 4}
    write_shapes(tmp_path / "b", classes=2, per_class={"train": 2}, size=16)
    first = np.asarray(Image.open(tmp_path / "a" / "train" / "square" / "00001.png"))
    assert np.array_equal(first, np.asarray(Image.open(tmp_path / "b" / "train" / "square" / "00001.png")))
    assert sorted(p.name for p in (tmp_path / "a" / "train").iterdir()) == ["circle", "square"]
    assert write_image_folder  # the fixtures' writer is shared with other tests
