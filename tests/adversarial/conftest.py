"""Fixtures of the adversarial suite.

- ``lab`` (per module): the in-process world of :mod:`tests.adversarial.support`.
- ``real`` (per xdist worker): gunicorn ``soapattest serve`` on SQLite and simulated
  swtpm hosts, see :mod:`tests.adversarial.realworld`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adversarial.support import Lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    world = Lab(tmp_path_factory.mktemp("adversarial-lab"))
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.adversarial.realworld import start_real_world
    from tests.swtpm_fixture import have_swtpm

    if not have_swtpm():
        pytest.skip("swtpm is not installed")
    with start_real_world(tmp_path_factory.mktemp("adversarial-real")) as world:
        yield world
