"""TLS settings of the agent and of the server's agent client; fingerprint helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from soapattest.agent.config import AgentConfig, load_config
from soapattest.agent.main import build_parser, config_from_args
from soapattest.errors import AgentConfigError, ConfigError
from soapattest.security.tls import fingerprint, normalize_fingerprint, peer_common_names
from soapattest.server.agents import SoapAgentClient
from soapattest.server.config import load_config as load_server_config
from tests.conftest import ROOT

P = Path("/etc/agent")


def test_agent_tls_defaults_off() -> None:
    config = load_config(ROOT / "conf" / "agent.conf")
    assert (config.tls_cert, config.tls_key, config.tls_client_ca, config.allowed_client_cn,
            config.tls) == (None, None, None, (), False)


def test_agent_tls_from_file(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\ntls_cert = /pki/a.crt\ntls_key = /pki/a.key\n"
                    "tls_client_ca = /pki/ca.crt\nallowed_client_cn = s1, s2 ,,\n")
    config = load_config(conf)
    assert config.tls and config.tls_cert == Path("/pki/a.crt")
    assert config.tls_client_ca == Path("/pki/ca.crt")
    assert config.allowed_client_cn == ("s1", "s2")


def test_agent_tls_flags() -> None:
    args = build_parser().parse_args(["--tls-cert", "c.pem", "--tls-key", "k.pem",
                                      "--tls-client-ca", "ca.pem", "--allowed-client-cn", "srv"])
    config = config_from_args(args)
    assert (config.tls_cert, config.tls_key, config.tls_client_ca, config.allowed_client_cn) == (
        Path("c.pem"), Path("k.pem"), Path("ca.pem"), ("srv",))


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"tls_cert": P / "c"}, "tls_key"),
        ({"tls_key": P / "k"}, "tls_key"),
        ({"tls_client_ca": P / "ca"}, "tls_client_ca"),
        ({"tls_cert": P / "c", "tls_key": P / "k", "allowed_client_cn": ("s",)},
         "allowed_client_cn"),
        ({"tls_cert": P / "c", "tls_key": P / "k", "tls_client_ca": P / "ca",
          "allowed_client_cn": ("",)}, "allowed_client_cn"),
    ],
)
def test_agent_tls_inconsistent_settings(changes: dict[str, object], option: str) -> None:
    with pytest.raises(AgentConfigError) as info:
        AgentConfig(**changes)  # type: ignore[arg-type]
    assert info.value.option == option


def test_agent_tls_consistent_settings() -> None:
    config = AgentConfig(tls_cert=P / "c", tls_key=P / "k", tls_client_ca=P / "ca",
                         allowed_client_cn=("srv",))
    assert config.tls


def test_server_agents_and_auth_sections(tmp_path: Path) -> None:
    conf = tmp_path / "soapattest.conf"
    conf.write_text("[agents]\nagent_ca = pki/agents.pem\nclient_cert = pki/c.pem\n"
                    "client_key = pki/c.key\n[auth]\ndigest_key = digest.key\ntoken_window = 120\n")
    config = load_server_config(conf, environ={})
    assert config.agent_ca == tmp_path / "pki" / "agents.pem"
    assert config.agent_client_cert == tmp_path / "pki" / "c.pem"
    assert config.agent_client_key == tmp_path / "pki" / "c.key"
    assert config.auth_digest_key == tmp_path / "digest.key"
    assert config.auth_token_window == 120


def test_server_auth_from_environment() -> None:
    config = load_server_config(environ={"SOAPATTEST_AUTH_TOKEN_WINDOW": "60",
                                         "SOAPATTEST_AGENTS_AGENT_CA": "/pki/a.pem"})
    assert (config.auth_token_window, config.agent_ca) == (60, Path("/pki/a.pem"))


def test_server_defaults() -> None:
    config = load_server_config(environ={})
    assert (config.agent_ca, config.agent_client_cert, config.auth_digest_key,
            config.auth_token_window) == (None, None, None, 300)


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("[agents]\nclient_cert = c.pem\n", "agents.client_key"),
        ("[auth]\ntoken_window = 5\n", "auth.token_window"),
        ("[auth]\ntoken_window = 7200\n", "auth.token_window"),
        ("[agents]\nunknown = 1\n", "agents.unknown"),
    ],
)
def test_server_invalid_settings(tmp_path: Path, text: str, option: str) -> None:
    conf = tmp_path / "soapattest.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_server_config(conf, environ={})
    assert info.value.option == option


def test_agent_client_refuses_unreadable_tls_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SoapAgentClient(timeout=1, max_response_bytes=1024, ca_bundle=tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ConfigError):
        SoapAgentClient(timeout=1, max_response_bytes=1024, client_cert=tmp_path / "bad.pem",
                        client_key=tmp_path / "bad.pem")
    assert SoapAgentClient(timeout=1, max_response_bytes=1024) is not None


def test_fingerprints() -> None:
    fp = fingerprint(b"certificate")
    assert len(fp) == 64 and fp == fp.lower()
    colons = ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()
    assert normalize_fingerprint(colons) == fp
    assert normalize_fingerprint(f"sha256:{fp}") == fp
    for bad in ("", fp[:-1], fp + "0", "g" * 64, f"sha1:{fp}"):
        with pytest.raises(ValueError):
            normalize_fingerprint(bad)


def test_peer_common_names() -> None:
    cert = {"subject": ((("organizationName", "Org"),), (("commonName", "srv1"),))}
    assert peer_common_names(cert) == ("srv1",)
    assert peer_common_names({}) == ()
    assert peer_common_names(None) == ()
