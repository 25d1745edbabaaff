"""decode_event / digest_verified on real events and on hand-made data."""

from __future__ import annotations

import hashlib
import struct
import uuid

import pytest

from soapattest.tpm.eventlog import (
    EventType,
    UntrustedEvent,
    decode_event,
    decode_log,
    parse_event_log,
)
from soapattest.tpm.eventlog.decode import decode_data
from soapattest.tpm.eventlog.devicepath import device_path_text
from tests.unit.test_eventlog_support import GOOD_LOGS, read

COREOS = "goattest_coreos_36_shielded_vm_no_secure_boot.bin"
T = EventType


def event(
    etype: int, data: bytes, *, digest_of: bytes | None = None, pcr: int = 7
) -> UntrustedEvent:
    """An event whose sha1/sha256 digests are the hash of ``digest_of`` (default: data)."""
    source = data if digest_of is None else digest_of
    digests = {b: hashlib.new(b, source).digest() for b in ("sha1", "sha256")}
    return UntrustedEvent(1, 0, pcr, etype, digests, data)


def variable_data(guid: str, name: str, value: bytes) -> bytes:
    encoded = name.encode("utf-16-le")
    return uuid.UUID(guid).bytes_le + struct.pack("<QQ", len(name), len(value)) + encoded + value


GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"


@pytest.fixture(scope="module")
def coreos():
    return parse_event_log(read(COREOS))


# --------------------------------------------------------------------------
# Every real event decodes


@pytest.mark.parametrize("name", GOOD_LOGS)
def test_every_real_event_decodes(name: str) -> None:
    log = parse_event_log(read(name))
    for ev, decoded in zip(log.events, decode_log(log), strict=True):
        assert decoded.summary, ev.index
        assert not decoded.summary.startswith("data does not decode"), (ev.index, decoded)
        # No real event has a digest that contradicts its data.
        assert decoded.digest_verified is not False, (ev.index, ev.type_name)


# --------------------------------------------------------------------------
# Separators


def test_separator_decodes_and_verifies() -> None:
    decoded = decode_event(event(T.EV_SEPARATOR, b"\x00\x00\x00\x00"))
    assert (decoded.summary, decoded.fields["error"], decoded.digest_verified) == (
        "separator",
        False,
        True,
    )


def test_error_separator_is_flagged() -> None:
    decoded = decode_event(event(T.EV_SEPARATOR, b"\x01\x00\x00\x00"))
    assert decoded.fields["error"] is True
    assert decoded.summary.startswith("ERROR separator")


def test_separator_whose_digest_is_of_other_data_is_not_verified() -> None:
    decoded = decode_event(
        event(T.EV_SEPARATOR, b"\x00\x00\x00\x00", digest_of=b"\x01\x00\x00\x00")
    )
    assert decoded.digest_verified is False
    assert decoded.summary == "separator"


def test_malformed_separator_does_not_decode() -> None:
    decoded = decode_event(event(T.EV_SEPARATOR, b"\x00\x00"))
    assert decoded.summary.startswith("data does not decode as EV_SEPARATOR")
    assert decoded.fields["size"] == 2


# --------------------------------------------------------------------------
# Actions and IPL text


def test_efi_action_text() -> None:
    decoded = decode_event(event(T.EV_EFI_ACTION, b"Exit Boot Services Invocation"))
    assert (decoded.summary, decoded.digest_verified) == ("Exit Boot Services Invocation", True)


def test_efi_action_with_a_different_digest_is_not_verified() -> None:
    decoded = decode_event(event(T.EV_EFI_ACTION, b"Calling EFI", digest_of=b"Something else"))
    assert decoded.digest_verified is False


def test_grub_command_digest_is_of_the_command() -> None:
    data = b"grub_cmd: set root=hd0,gpt1\x00"
    decoded = decode_event(event(T.EV_IPL, data, digest_of=b"set root=hd0,gpt1", pcr=8))
    assert decoded.fields["command"] == "set root=hd0,gpt1"
    assert decoded.fields["kind"] == "grub_cmd"
    assert decoded.digest_verified is True


def test_ipl_file_measurement_is_not_a_hash_of_the_data() -> None:
    decoded = decode_event(event(T.EV_IPL, b"/boot/vmlinuz\x00", digest_of=b"<kernel>", pcr=9))
    assert decoded.summary == "/boot/vmlinuz"
    assert decoded.digest_verified is None


# --------------------------------------------------------------------------
# UEFI variables


def test_secure_boot_variable(coreos) -> None:
    decoded = decode_event(coreos.events[3])
    assert decoded.summary == "SecureBoot (EFI_GLOBAL_VARIABLE): disabled"
    assert decoded.fields["variable_guid"] == GLOBAL
    assert decoded.digest_verified is True


def test_pk_certificate_subject(coreos) -> None:
    decoded = decode_event(coreos.events[4])
    (entry,) = decoded.fields["signature_lists"]
    assert entry["type"] == "EFI_CERT_X509"
    assert entry["signatures"][0]["subject"] == "CN=newpk"


def test_dbx_lists_hashes_and_certificates(coreos) -> None:
    decoded = decode_event(coreos.events[7])
    lists = decoded.fields["signature_lists"]
    hashes = [
        s["hash"] for lst in lists if lst["type"] == "EFI_CERT_SHA256" for s in lst["signatures"]
    ]
    assert len(hashes) == 183
    assert all(len(h) == 64 for h in hashes)
    assert "183 SHA256" in decoded.summary
    assert "Canonical Ltd. Secure Boot Signing" in decoded.summary


def test_boot_order_and_boot_option(coreos) -> None:
    order = decode_event(coreos.events[9])
    assert order.fields["boot_order"] == ["Boot0002", "Boot0000", "Boot0001"]
    option = decode_event(coreos.events[10]).fields["load_option"]
    assert option["description"] == "Fedora"
    assert option["device_path"] == (
        r"HD(2,GPT,22b9d9d7-140b-473b-82e0-26ded9d03d28,0x1000,0x3f800)/\EFI\fedora\shimx64.efi"
    )


def test_boot_variable_digest_of_the_variable_data_only() -> None:
    # EDK2 measures Boot#### as H(VariableData) (TCG EFI Platform spec 1.22 rule).
    value = struct.pack("<IH", 1, 4) + "X\0".encode("utf-16-le") + b"\x7f\xff\x04\x00"
    data = variable_data(GLOBAL, "Boot0001", value)
    assert decode_event(event(T.EV_EFI_VARIABLE_BOOT, data, digest_of=value)).digest_verified
    assert decode_event(event(T.EV_EFI_VARIABLE_BOOT, data)).digest_verified
    # ... but DRIVER_CONFIG must hash the whole UEFI_VARIABLE_DATA.
    config = event(T.EV_EFI_VARIABLE_DRIVER_CONFIG, data, digest_of=value)
    assert decode_event(config).digest_verified is False


def test_shim_padded_authority_event_is_verified() -> None:
    log = parse_event_log(read("goattest_sb_cert.bin"))
    decoded = decode_event(log.events[12])
    assert decoded.fields["trailing_bytes"] == 6
    assert (
        decoded.fields["certificate"]["subject_cn"] == "Canonical Ltd. Master Certificate Authority"
    )
    assert decoded.digest_verified is True


def test_variable_with_an_overlong_name_does_not_decode() -> None:
    data = uuid.UUID(GLOBAL).bytes_le + struct.pack("<QQ", 2**40, 0) + b"A\x00"
    decoded = decode_event(event(T.EV_EFI_VARIABLE_DRIVER_CONFIG, data))
    assert decoded.summary.startswith("data does not decode")
    assert decoded.digest_verified is True  # the digest is still H(data): it is the spec rule


def test_corrupt_signature_list_keeps_the_variable_name() -> None:
    data = variable_data("d719b2cb-3d3a-4596-a3bc-dad00e67656f", "db", b"\x01" * 40)
    decoded = decode_event(event(T.EV_EFI_VARIABLE_DRIVER_CONFIG, data))
    assert decoded.summary.startswith("db (EFI_IMAGE_SECURITY_DATABASE): value does not decode")
    assert "value_error" in decoded.fields


# --------------------------------------------------------------------------
# Image loads, device paths, GPT


def test_boot_application_device_path(coreos) -> None:
    decoded = decode_event(coreos.events[22])
    assert decoded.fields["device_path"] == (
        "PciRoot(0x0)/Pci(0x4,0x0)/NVMe(0x1,00-00-00-00-00-00-00-00)/"
        r"HD(2,GPT,22b9d9d7-140b-473b-82e0-26ded9d03d28,0x1000,0x3f800)/\EFI\fedora\shimx64.efi"
    )
    assert decoded.digest_verified is None  # the digest is of the PE image


def _node(ntype: int, subtype: int, body: bytes) -> bytes:
    return struct.pack("<BBH", ntype, subtype, 4 + len(body)) + body


END = _node(0x7F, 0xFF, b"")


def test_device_path_nodes() -> None:
    path = (
        _node(2, 1, struct.pack("<II", 0x0A0341D0, 0))
        + _node(1, 1, bytes([2, 0x1F]))
        + _node(3, 18, struct.pack("<HHH", 1, 0xFFFF, 0))
        + _node(4, 4, "\\EFI\\BOOT\\BOOTX64.EFI\0".encode("utf-16-le"))
        + END
    )
    assert (
        device_path_text(path)
        == r"PciRoot(0x0)/Pci(0x1f,0x2)/Sata(0x1,0xffff,0x0)/\EFI\BOOT\BOOTX64.EFI"
    )


def test_device_path_unknown_and_malformed_nodes() -> None:
    unknown = _node(9, 9, b"\xaa\xbb") + END
    assert device_path_text(unknown) == "Path(9,9,aabb)"
    bad_length = _node(1, 1, bytes([0, 1]))[:2] + b"\x02\x00" + b"\x00" * 8
    assert device_path_text(bad_length) == "<malformed>"
    overrun = struct.pack("<BBH", 1, 1, 200) + b"\x00\x00"
    assert device_path_text(overrun) == "<malformed>"


def test_device_path_instances_are_comma_separated() -> None:
    pci = _node(1, 1, bytes([0, 1]))
    path = pci + _node(0x7F, 0x01, b"") + pci + END
    assert device_path_text(path) == "Pci(0x1,0x0),Pci(0x1,0x0)"


def test_device_path_node_count_is_bounded() -> None:
    path = _node(1, 1, bytes([0, 1])) * 500
    text = device_path_text(path)
    assert text.endswith("...")
    assert text.count("Pci(") == 64


def test_image_load_event_with_32_bit_uintn() -> None:
    path = _node(4, 4, "\\a.efi\0".encode("utf-16-le")) + END
    data = struct.pack("<QIII", 0x1000, 0x200, 0, len(path)) + path
    decoded = decode_event(event(T.EV_EFI_BOOT_SERVICES_APPLICATION, data), uintn_bytes=4)
    assert decoded.summary == r"\a.efi"
    # The other UINTN size is tried when the declared one does not fit.
    assert decode_event(event(T.EV_EFI_BOOT_SERVICES_APPLICATION, data)).summary == r"\a.efi"


def test_gpt_event(coreos) -> None:
    decoded = decode_event(coreos.events[21])
    assert decoded.fields["partition_count"] == 4
    assert [p["name"] for p in decoded.fields["partitions"]] == [
        "BIOS-BOOT",
        "EFI-SYSTEM",
        "boot",
        "root",
    ]
    assert decoded.fields["partitions"][1]["type"] == "EFI System"
    assert decoded.digest_verified is True


def test_truncated_gpt_does_not_decode(coreos) -> None:
    data = coreos.events[21].data
    decoded = decode_event(event(T.EV_EFI_GPT_EVENT, data[:-1]))
    assert decoded.summary.startswith("data does not decode as EV_EFI_GPT_EVENT")


# --------------------------------------------------------------------------
# Blobs, versions, handoff tables, tags


def test_firmware_blobs() -> None:
    blob = struct.pack("<QQ", 0xFF000000, 0x10000)
    assert decode_data(T.EV_EFI_PLATFORM_FIRMWARE_BLOB, blob)[1] == {
        "base": 0xFF000000,
        "length": 0x10000,
    }
    assert decode_data(T.EV_POST_CODE, blob)[0] == "base 0xff000000, length 0x10000"
    assert decode_data(T.EV_POST_CODE, b"ACPI DATA")[0] == "'ACPI DATA'"
    blob2 = b"\x07POST FV" + blob
    _summary, fields = decode_data(T.EV_EFI_PLATFORM_FIRMWARE_BLOB2, blob2)
    assert fields["description"] == "POST FV"
    assert decode_event(event(T.EV_EFI_PLATFORM_FIRMWARE_BLOB, blob)).digest_verified is None


def test_crtm_version_utf16_and_guid() -> None:
    assert decode_data(T.EV_S_CRTM_VERSION, "2.3.5\0".encode("utf-16-le"))[0] == "2.3.5"
    guid = uuid.uuid4()
    assert decode_data(T.EV_S_CRTM_VERSION, guid.bytes_le)[0] == f"GUID {guid}"


def test_handoff_tables() -> None:
    smbios3 = uuid.UUID("f2fd1544-9794-4a2c-992e-e5bbcf20e394").bytes_le
    data = struct.pack("<Q", 1) + smbios3 + struct.pack("<Q", 0x7F000000)
    summary, fields = decode_data(T.EV_EFI_HANDOFF_TABLES, data)
    assert summary == "SMBIOS3_TABLE"
    assert fields["tables"][0]["address"] == 0x7F000000
    summary2, _ = decode_data(T.EV_EFI_HANDOFF_TABLES2, b"\x04SMB\x00" + data)
    assert summary2 == "SMB: SMBIOS3_TABLE"


def test_event_tag() -> None:
    data = struct.pack("<II", 0x8F3B22EC, 13) + b"Linux initrd\x00"
    summary, fields = decode_data(T.EV_EVENT_TAG, data)
    assert fields["tag_name"] == "Linux initrd"
    assert summary == "Linux initrd: 'Linux initrd'"


# --------------------------------------------------------------------------
# EV_NO_ACTION


def test_spec_id_and_startup_locality_events() -> None:
    log = parse_event_log(read("gotpmtools_glinux-alex.bin"))
    spec = decode_event(log.events[0])
    assert spec.summary == "Spec ID Event03 (PFP 2.0, banks sha1, sha256)"
    assert spec.digest_verified is None
    locality = decode_event(log.events[1])
    assert (locality.summary, locality.fields) == ("StartupLocality 3", {"startup_locality": 3})


def test_sp800_155_event() -> None:
    log = parse_event_log(read("gotpmtools_eventlogwithsp800155.bin"))
    decoded = decode_event(log.events[2])
    assert decoded.fields["platform_manufacturer"] == "Google, Inc."
    assert decoded.fields["platform_model"] == "Google Compute Engine"
    assert decoded.fields["rim_locator"].startswith("https://storage.googleapis.com/")


def test_unknown_type_and_data() -> None:
    decoded = decode_event(event(0x12345678, b"\x00\x01\x02"))
    assert decoded.summary == "3 bytes 000102"
    assert decoded.digest_verified is None
    assert event(0x12345678, b"").type_name == "0x12345678"
