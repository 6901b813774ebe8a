"""The spec files of specs/: the one rule for what counts as a spec, for every test that runs per spec.

Tests take the `example_spec` fixture (one test per spec) or `example_specs` (the whole list) from
conftest.py; a module that needs the list while it is collected (to build its own cases) imports
SPEC_FILES from here. A spec added to specs/ is then tested everywhere at once.
"""

from __future__ import annotations

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
SPEC_FILES = sorted(p for p in SPECS_DIR.glob("*") if p.suffix in SPEC_SUFFIXES)


def spec_id(path: Path) -> str:
    """Return the test id of a spec file: its file name, `digits_cnn.yaml`."""
    return path.name
