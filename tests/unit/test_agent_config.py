"""Agent configuration: the example file, flag overrides, refused values."""

from __future__ import annotations

from pathlib import Path

import pytest

from soapattest.agent.config import AgentConfig, load_config, parse_listen
from soapattest.agent.main import build_parser, config_from_args
from soapattest.errors import AgentConfigError
from tests.conftest import ROOT

EXAMPLE = ROOT / "conf" / "agent.conf"


def test_example_file_is_the_defaults() -> None:
    assert load_config(EXAMPLE) == AgentConfig()


def test_flags_override_the_file() -> None:
    args = build_parser().parse_args([
        "--config", str(EXAMPLE), "--listen", "0.0.0.0:0", "--tcti",
        "swtpm:host=127.0.0.1,port=2321", "--ak-type", "rsa", "--ak-handle", "0x81010010",
        "--ima-chunk-max", "8192", "--log-level", "DEBUG", "--port-file", "/run/agent.port",
    ])
    cfg = config_from_args(args)
    assert (cfg.host, cfg.port) == ("0.0.0.0", 0)  # noqa: S104
    assert cfg.tcti == "swtpm:host=127.0.0.1,port=2321"
    assert (cfg.ak_type, cfg.ak_handle) == ("rsa", 0x81010010)
    assert cfg.ima_chunk_max == 8192 and cfg.log_level == "DEBUG"
    assert cfg.port_file == Path("/run/agent.port")
    assert cfg.eventlog_path == AgentConfig().eventlog_path  # from the file


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("[agent]\nak_handle = 0x01c00002\n", "ak_handle"),
        ("[agent]\nak_handle = twelve\n", "ak_handle"),
        ("[agent]\nak_type = dsa\n", "ak_type"),
        ("[agent]\nlisten = nowhere\n", "listen"),
        ("[agent]\nlisten = 127.0.0.1:70000\n", "listen"),
        ("[agent]\ntcti = /dev/tpmrm0\n", "tcti"),
        ("[agent]\nima_chunk_max = 10\n", "ima_chunk_max"),
        ("[agent]\nmax_request_bytes = 99999999\n", "max_request_bytes"),
        ("[agent]\nquote_attempts = 0\n", "quote_attempts"),
        ("[agent]\nlog_level = LOUD\n", "log_level"),
        ("[agent]\ncolour = blue\n", "colour"),
        ("[other]\nlisten = 1.2.3.4:5\n", "config"),
        ("not an ini file", "config"),
    ],
)
def test_bad_values_name_the_option(tmp_path: Path, text: str, option: str) -> None:
    path = tmp_path / "agent.conf"
    path.write_text(text)
    with pytest.raises(AgentConfigError) as err:
        load_config(path)
    assert err.value.option == option
    assert err.value.code == "Client.InvalidConfiguration"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError) as err:
        load_config(tmp_path / "absent.conf")
    assert err.value.option == "config"


def test_good_values_accepted(tmp_path: Path) -> None:
    path = tmp_path / "agent.conf"
    path.write_text("[agent]\nlisten = [::1]:0\nak_handle = 2164326402\nquote_attempts = 10\n")
    cfg = load_config(path)
    assert (cfg.host, cfg.port, cfg.ak_handle, cfg.quote_attempts) == ("::1", 0, 0x81010002, 10)


def test_parse_listen() -> None:
    assert parse_listen("10.0.0.1:9290") == ("10.0.0.1", 9290)
    assert parse_listen(":9290") == ("127.0.0.1", 9290)
    with pytest.raises(AgentConfigError):
        parse_listen("10.0.0.1")
