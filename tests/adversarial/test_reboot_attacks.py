"""Reboots and TPM state rollback on real swtpm hosts, through the real server.

- A host reboots into a different (tampered) boot and its agent serves the
  previous boot's log: the log no longer replays to the fresh quote.
- A virtual TPM's state is rolled back to an older copy (a snapshot restore):
  resetCount goes backwards against the last verified quote.

The counter rules are unit-tested with a software AK in
``tests/unit/test_verify_quote.py``; here the TPM is real and only its state
file is manipulated, as an attacker with the hypervisor's disk would.
"""

from __future__ import annotations

import shutil

import pytest

from soapattest.model import CheckStatus, TrustStatus
from tests.adversarial.hostile_agent import eventlog_response
from tests.adversarial.realworld import RealWorld
from tests.adversarial.support import assert_defended
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]


def test_reboot_serving_the_previous_boots_log_is_untrusted(real: RealWorld) -> None:
    sim = real.cluster.start_host("adv-boot")
    agent = real.agent(upstream=sim.agent_url)
    assert real.register("boot-victim", agent.url).fault is None
    assert real.attest("boot-victim").status is TrustStatus.TRUSTED  # positive twin
    old_log = sim.eventlog_path.read_bytes()
    # the host reboots into another boot (one boot application changed)
    real.cluster.stop_host("adv-boot")
    sim = real.cluster.start_host("adv-boot", tamper="event")
    assert sim.eventlog_path.read_bytes() != old_log
    agent.upstream = sim.agent_url
    agent.on("GetEventLog", eventlog_response(old_log))
    before = real.snapshot()
    out = real.attest("boot-victim")
    assert_defended(real, before, out, host="boot-victim", check="eventlog.replay")
    assert out.reboot_detected and out.has("quote.reboot", CheckStatus.INFO)
    # positive twin: a reboot into the known-good boot, its own log served
    agent.honest()
    real.cluster.stop_host("adv-boot")
    agent.upstream = real.cluster.start_host("adv-boot").agent_url
    rebooted = real.attest("boot-victim")
    assert rebooted.status is TrustStatus.TRUSTED and rebooted.reboot_detected


def test_tpm_state_rolled_back_is_untrusted(real: RealWorld) -> None:
    sim = real.cluster.start_host("adv-rollback")
    agent = real.agent(upstream=sim.agent_url)
    assert real.register("rollback-victim", agent.url).fault is None
    # an attacker keeps a copy of the virtual TPM's state (taken while it is off)
    sim.power_off()
    saved = sim.dir / "tpm-copy"
    shutil.copytree(sim.swtpm.state_dir, saved)
    sim.power_on()
    sim.start_agent()
    sim.restart()  # two boots later ...
    agent.upstream = sim.agent_url
    assert real.attest("rollback-victim").status is TrustStatus.TRUSTED  # positive twin
    # ... the old state is put back: resetCount is lower than in the last verified quote
    sim.power_off()
    shutil.rmtree(sim.swtpm.state_dir)
    shutil.copytree(saved, sim.swtpm.state_dir)
    sim.power_on()
    sim.start_agent()
    agent.upstream = sim.agent_url
    before = real.snapshot()
    out = real.attest("rollback-victim")
    assert_defended(real, before, out, host="rollback-victim", check="quote.clock")
    assert "resetCount went back" in out.failing()["quote.clock"]
