"""Server configuration: file < environment < overrides, every value bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from soapattest.errors import ConfigError
from soapattest.server.config import ServerConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.conf"
    path.write_text(text)
    return path


def test_example_configuration_loads_with_documented_defaults() -> None:
    cfg = load_config(ROOT / "conf" / "soapattest.conf", environ={})
    assert cfg.listen_port == 8080
    assert cfg.db_url.startswith("sqlite:///") and cfg.db_url.endswith("soapattest.sqlite")
    assert cfg.ek_roots == ()


def test_precedence_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nworkers = 3\nthreads = 5\n")
    assert load_config(path, environ={}).workers == 3
    env = {"SOAPATTEST_SERVER_WORKERS": "4"}
    assert load_config(path, environ=env).workers == 4
    assert load_config(path, environ=env, overrides={"workers": 6}).workers == 6
    assert load_config(path, environ=env).threads == 5


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[trust]\nek_roots = a.pem, b.pem\n[server]\nstate_dir = st\n")
    cfg = load_config(path, environ={})
    assert cfg.ek_roots == (tmp_path / "a.pem", tmp_path / "b.pem")
    assert cfg.state_dir == tmp_path / "st"


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("[server]\nworkers = 0\n", "server.workers"),
        ("[server]\nworkers = many\n", "server.workers"),
        ("[server]\nlisten = nowhere\n", "server.listen"),
        ("[attestation]\nnonce_ttl = 1\n", "attestation.nonce_ttl"),
        ("[trust]\nrequire_ek_certificate = maybe\n", "trust.require_ek_certificate"),
        ("[server]\ncolour = blue\n", "server.colour"),
        ("[saml]\nvalidity = 5\n", "saml.validity"),
    ],
)
def test_bad_values_are_refused_naming_the_option(tmp_path: Path, text: str, option: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    assert info.value.option == option


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.conf", environ={})


def test_defaults_are_valid() -> None:
    assert ServerConfig().nonce_ttl == 120
