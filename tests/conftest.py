"""Test configuration shared by every tier."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR
