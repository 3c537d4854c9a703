"""image-classification: a folder with one subfolder of images per class in, a small PyTorch
CNN out (CPU, or a GPU when there is one), saved as a model that takes raw images: each
instance a base64-encoded image file (PNG, JPEG, ...) or an array of pixels (H x W [x C]).

    python -m trainer.image --data photos/ --epochs 5
"""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any

import jupyter_cloudml
from jupyter_cloudml.templates.data import image_classes
from trainer import common


def parser() -> Any:
    """The trainer's flags: the common ones and the hyperparameters."""
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--image_size", type=int, default=32)
    p.add_argument("--channels", type=int, choices=(1, 3), default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--width", type=int, default=16)
    return p


def to_array(image: Any, size: int, channels: int) -> Any:
    """One image (a PIL image, base64 file bytes, or pixels) as a float array C x size x size."""
    import numpy as np
    from PIL import Image

    if isinstance(image, str):
        image = Image.open(io.BytesIO(base64.b64decode(image)))
    elif not isinstance(image, Image.Image):
        pixels = np.asarray(image, dtype=np.float32)
        if pixels.max(initial=0) <= 1.0:
            pixels = pixels * 255
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8).squeeze())
    image = image.convert("L" if channels == 1 else "RGB").resize((size, size))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


class ImageClassifier:
    """The served model: TorchScript bytes, the class names and the input size; `predict`
    takes raw images as `to_array` does and answers class names."""

    def __init__(self, script: bytes, classes: list[str], size: int, channels: int) -> None:
        import numpy as np

        self.script, self.size, self.channels = script, size, channels
        self.classes_ = np.asarray(classes)  # as scikit-learn classifiers have it
        self._module: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_module": None}

    def predict(self, batch: Any) -> list[str]:
        import numpy as np
        import torch

        if hasattr(batch, "columns"):  # rows as {"b64": ...} arrive as a DataFrame
            column = "b64" if "b64" in batch.columns else batch.columns[0]
            batch = list(batch[column])
        if self._module is None:
            with warnings.catch_warnings():  # torch deprecates TorchScript; it serves here
                warnings.simplefilter("ignore", DeprecationWarning)
                self._module = torch.jit.load(io.BytesIO(self.script), map_location="cpu")
            self._module.eval()
        x = torch.from_numpy(np.stack([to_array(i, self.size, self.channels) for i in batch]))
        with torch.no_grad():
            index = self._module(x).argmax(dim=1).tolist()
        return [str(self.classes_[i]) for i in index]


def network(channels: int, width: int, n_classes: int) -> Any:
    """A small CNN: two conv blocks, global average pooling, a linear layer."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, n_classes),
    )


def main() -> None:
    import numpy as np
    import torch
    from PIL import Image
    from sklearn.model_selection import train_test_split

    args = parser().parse_args()
    torch.manual_seed(args.seed)
    found = image_classes(args.data)
    classes = sorted(found)
    paths = [(p, classes.index(name)) for name in classes for p in found[name]]
    x = np.stack([to_array(Image.open(p), args.image_size, args.channels) for p, _ in paths])
    y = np.array([label for _, label in paths])
    stratify = y if np.bincount(y).min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_size, random_state=args.seed, stratify=stratify
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = network(args.channels, args.width, len(classes)).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr)
    data = torch.utils.data.TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True)
    held_out = torch.from_numpy(x_test)
    for epoch in range(1, args.epochs + 1):
        net.train()
        for xb, yb in loader:
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xb.to(device)), yb.to(device))
            loss.backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            predicted = net(held_out.to(device)).argmax(dim=1).cpu().numpy()
        accuracy = float((predicted == y_test).mean())
        print(f"epoch {epoch}: loss {loss.item():.4f}, accuracy {accuracy:.4f}", flush=True)
        if epoch < args.epochs:  # the curve a study's early stopping reads; the last below
            jupyter_cloudml.report(step=epoch, accuracy=accuracy, loss=loss.item())
    net = net.cpu().eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), buffer)
    model = ImageClassifier(buffer.getvalue(), classes, args.image_size, args.channels)
    names = [classes[i] for i in y_test], [classes[i] for i in predicted]
    report, figure = common.classification_report(*names)
    report.update(model="cnn", n_train=len(x_train), classes=classes, device=device)
    save_model(model, args.job_dir)
    value = report["metrics"]["accuracy"]
    common.write_report(args.job_dir, report, figure, "accuracy", value, step=args.epochs)


def save_model(model: ImageClassifier, job_dir: str) -> None:
    """Pickled with its class by value, so the model server needs this package no more."""
    import os
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    os.makedirs(job_dir, exist_ok=True)
    with open(os.path.join(job_dir, common.MODEL_FILE), "wb") as handle:
        cloudpickle.dump(model, handle)


if __name__ == "__main__":
    common.run(main)
