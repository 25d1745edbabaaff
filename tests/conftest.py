"""Test configuration shared by every tier."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SHARED = ROOT.parent / "shared" / "data"
_BUNDLED = ROOT / "tests" / "data" / "real"

# Real measurement data: the workspace's ../shared/data when present, else the
# identical copy in tests/data/real (tests/unit/test_data_copy.py keeps them equal).
DATA_DIR = Path(os.environ.get("SOAPATTEST_TEST_DATA", _SHARED if _SHARED.is_dir() else _BUNDLED))
EVENTLOG_DIR = DATA_DIR / "eventlogs"
IMA_DIR = DATA_DIR / "ima"


def pytest_configure(config: pytest.Config) -> None:
    """Under ``make test`` (SOAPATTEST_REQUIRE_SWTPM=1) a missing swtpm is an error, so
    that the TPM-backed tests can never be skipped silently."""
    if os.environ.get("SOAPATTEST_REQUIRE_SWTPM") == "1":
        missing = [t for t in ("swtpm", "swtpm_setup") if shutil.which(t) is None]
        if missing:
            raise pytest.UsageError(f"SOAPATTEST_REQUIRE_SWTPM=1 but {', '.join(missing)} "
                                    "is not installed (make bootstrap installs it)")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR
