"""scikit-learn's 8x8 digits: ships with scikit-learn, so it needs no download."""

from __future__ import annotations

from runtime.data.labels import encode_labels
from runtime.data.samples import Samples, float_tensor


def read_digits(task: str) -> Samples:
    """Return the 1797 digits as (N, 1, 8, 8) images in [0, 1] (pixel values are 0..16).

    For reconstruction the labels are not read: the target is the image itself.
    """
    # sklearn is slow to import, and only digits needs it
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = float_tensor(digits.images.reshape(-1, 1, 8, 8) / 16.0)
    if task == "reconstruction":
        return Samples("digits", x, None)
    y, _, num_classes = encode_labels(digits.target, task, "data set 'digits'", _sample)
    names = [str(name) for name in digits.target_names]
    if task == "classification":
        return Samples("digits", x, y, class_names=names, num_classes=len(names))
    return Samples("digits", x, y, num_classes=num_classes)


def _sample(index: int) -> str:
    return f"sample {index}"
