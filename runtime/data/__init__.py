"""Readers for each data set nnspec trains on; `runtime.data.load.load_data` is the entry point.

Each reader returns a `Samples`: every sample it has, as tensors, before the train/val split.
"""

from runtime.data.samples import Samples

__all__ = ["Samples"]
