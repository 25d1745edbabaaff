"""The PostgreSQL test fixture skips without server binaries, or fails when they are required."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROBE = """
import os
from pathlib import Path

pytest_plugins = ["tests.pg_fixture"]


def test_probe(pg_cluster):
    Path(os.environ["PROBE_OUT"]).write_text(f"{pg_cluster.base} {pg_cluster.port}")
    assert pg_cluster.running
    assert os.environ.get("PROBE_FAIL") != "1", "the test fails after the cluster started"
"""


def _run_probe(
    tmp_path: Path, bindir: str, require: str, *, fail: bool = False
) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {
        **os.environ,
        "SOAPATTEST_PG_BINDIR": bindir,
        "SOAPATTEST_REQUIRE_POSTGRES": require,
        "PYTHONPATH": str(ROOT),
        "PROBE_OUT": str(tmp_path / "probe.out"),
        "PROBE_FAIL": "1" if fail else "",
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--rootdir",
            str(tmp_path),
            str(probe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )


def test_missing_binaries_skip_by_default(tmp_path: Path) -> None:
    done = _run_probe(tmp_path, str(tmp_path / "no-such-dir"), "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout


def test_missing_binaries_fail_when_postgres_is_required(tmp_path: Path) -> None:
    done = _run_probe(tmp_path, str(tmp_path / "no-such-dir"), "1")
    assert done.returncode != 0
    assert "PostgreSQL is required" in done.stdout


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("fail", [False, True], ids=["passing", "failing"])
def test_cluster_is_removed_after_the_session(tmp_path: Path, fail: bool) -> None:
    from tests.pg_fixture import find_bindir  # late: the plugin may not be loaded yet

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    done = _run_probe(tmp_path, str(bindir), "1", fail=fail)
    assert ("1 failed" if fail else "1 passed") in done.stdout, done.stdout + done.stderr
    base, port = (tmp_path / "probe.out").read_text().split()
    assert not Path(base).exists()  # stopped and removed, also when the test failed
    assert not _port_open(int(port))
