"""Readers for each data set nnspec trains on; `runtime.data.load_data` is the entry point.

Each reader returns a `Samples`: every sample it has, as tensors, before the train/val split.
"""

from .samples import Samples

__all__ = ["Samples"]
