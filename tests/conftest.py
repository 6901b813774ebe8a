"""Every test gets its own nnspec cache folder, so no test reads what another (or the user's own
runs) left in ~/.cache/nnspec, and none writes there."""

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(tmp_path_factory.mktemp("nnspec-cache")))
