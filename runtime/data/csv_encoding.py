"""How a csv file's feature columns become numbers: numeric columns as they are, columns of names
one-hot encoded with a vocabulary that a checkpoint keeps.

A column is categorical when none of its cells is a number (a column of numbers with one typo
stays numeric, and the typo is reported). Its vocabulary is every name in the column across the
whole file, sorted, so the validation and test splits hold no name the encoding lacks and the
encoded width is known before the split; it is stored in the checkpoint, and `nnspec predict`
encodes a name it does not hold as all zeros (with a warning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.data.labels import parse_numbers
from runtime.errors import UserError, shown

# a column of more names than this is more likely an identifier or free text than a category
MAX_CATEGORIES = 1000


@dataclass
class FeatureEncoding:
    """The feature columns of a csv file, in order, and the vocabulary of each categorical one."""

    features: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Return the number of values a sample has once encoded."""
        return sum(len(self.categories.get(name, [None])) for name in self.features)

    def one_hot(self) -> list[bool]:
        """Return, for each encoded value, whether it is a one-hot value (never standardized)."""
        flags: list[bool] = []
        for name in self.features:
            vocabulary = self.categories.get(name)
            flags += [True] * len(vocabulary) if vocabulary else [False]
        return flags

    def expansions(self) -> str:
        """Return how the categorical columns expanded, for messages ("'color' into 3: ...")."""
        parts = []
        for name, vocabulary in self.categories.items():
            names = ", ".join(shown(value) for value in vocabulary[:5])
            more = ", ..." if len(vocabulary) > 5 else ""
            parts.append(f"'{shown(name)}' into {len(vocabulary)} ({names}{more})")
        return "; ".join(parts)

    def as_data(self) -> dict[str, Any]:
        """Return the encoding as plain data (a checkpoint entry)."""
        return {
            "features": list(self.features),
            "categories": {k: list(v) for k, v in self.categories.items()},
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "FeatureEncoding":
        """Return the encoding `as_data` wrote."""
        return cls(
            list(data["features"]), {k: list(v) for k, v in data["categories"].items()}
        )


def detect_encoding(
    path: str,
    header: list[str],
    lines: list[int],
    rows: list[list[str]],
    indices: list[int],
) -> FeatureEncoding:
    """Return the encoding of the feature columns `indices`: categorical where some cell holds
    text and none a number (vocabulary: the column's names, sorted), numeric otherwise.
    """
    categories = {}
    for index in indices:
        cells = [row[index].strip() for row in rows]
        if not any(cells) or any(_is_number(cell) for cell in cells):
            continue
        vocabulary = sorted(set(cells))
        if "" in vocabulary:
            raise UserError(
                f"{shown(path)}:{lines[cells.index('')]}: column '{shown(header[index])}' is "
                f"empty; it holds names (one-hot encoded), so every cell needs one"
            )
        if len(vocabulary) > MAX_CATEGORIES:
            raise UserError(
                f"{shown(path)}: column '{shown(header[index])}' holds {len(vocabulary)} different "
                f"names, too many to one-hot encode (at most {MAX_CATEGORIES}); leave it out "
                f"with training.data.features"
            )
        categories[header[index]] = vocabulary
    return FeatureEncoding([header[i] for i in indices], categories)


def one_hot_columns(
    cells: list[str], vocabulary: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Return the one-hot float32 (N, len(vocabulary)) of `cells` and the names not in the
    vocabulary (their rows are all zeros)."""
    position = {name: i for i, name in enumerate(vocabulary)}
    out = np.zeros((len(cells), len(vocabulary)), dtype=np.float32)
    unseen = []
    for row, cell in enumerate(cells):
        column = position.get(cell.strip())
        if column is None:
            unseen.append(cell.strip())
        else:
            out[row, column] = 1.0
    return out, unseen


def _is_number(text: str) -> bool:
    return parse_numbers([text]) is not None
