"""Parsing IMA lists: real lists, hand-made entries of every template, bounds, errors."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import replace

import pytest

from soapattest.errors import (
    ImaLogError,
    ImaLogLimitError,
    ImaTruncatedError,
    ImaUnknownFormatError,
    ImaUnsupportedAlgorithmError,
)
from soapattest.tpm.ima import (
    ImaLimits,
    find_template_digest_mismatches,
    parse_ima,
    parse_ima_ascii,
    parse_ima_binary,
)
from tests.unit.test_ima_support import (
    ASCII_LIST,
    BINARY_TWIN,
    EXPECTED,
    LISTS,
    ascii_line,
    binary_entry,
    binary_ima_entry,
    d_ng,
    ima_hashed,
    n_ng,
    read_list,
    sha1,
    td,
)

SHA256_FILE = hashlib.sha256(b"file").digest()
SHA1_FILE = sha1(b"file").digest()


def ng_entry(path: str = "/usr/bin/true", **kw: object) -> bytes:
    return binary_entry("ima-ng", td(d_ng("sha256", SHA256_FILE), n_ng(path)), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Real lists.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_real_list_parses_to_the_expected_summary(name: str) -> None:
    expected = EXPECTED[name]["replay"]
    log = parse_ima(read_list(name))
    kind, _, alg = expected["kind"].partition("_")
    assert log.kind == kind
    assert log.template_hash_alg == (alg or expected["bank"])
    assert len(log.entries) == expected["entries"]
    assert log.violations == expected["violations"]
    assert log.templates == expected["templates"]
    assert log.trailing_partial == 0
    ba = log.boot_aggregate_entry
    assert ba is not None and ba.file_hash is not None
    assert f"{ba.file_hash_alg}:{ba.file_hash.hex()}" == expected["boot_aggregate"]
    assert [e.index for e in log.entries] == list(range(len(log.entries)))
    assert find_template_digest_mismatches(log.entries) == ()
    assert expected.get("template_digest_mismatches", 0) == 0


def test_ascii_list_rebuilds_exactly_the_binary_template_data() -> None:
    ascii_log = parse_ima(read_list(ASCII_LIST))
    binary_log = parse_ima(read_list(BINARY_TWIN))
    assert (ascii_log.kind, binary_log.kind) == ("ascii", "binary")
    assert len(ascii_log.entries) == len(binary_log.entries)
    for a, b in zip(ascii_log.entries, binary_log.entries, strict=True):
        assert replace(a, template_data_known=True) == b


def test_violations_of_the_real_list_have_zero_digests_and_zero_file_hashes() -> None:
    log = parse_ima(read_list(ASCII_LIST))
    violations = [e for e in log.entries if e.is_violation]
    assert len(violations) == EXPECTED[ASCII_LIST]["replay"]["violations"]
    for e in violations:
        assert e.template_digest == bytes(32)
        assert e.file_hash == bytes(32)
    assert not log.entries[1].is_violation


# --------------------------------------------------------------------------
# Hand-made entries of every template, in both formats.
# --------------------------------------------------------------------------

SIG = bytes.fromhex("030204deadbeef0008") + b"\x01" * 8
BUF = b"root=/dev/sda1 ro"
MODSIG = b"\x30\x82\x01\x00" + b"\x02" * 16

# template name, binary template data, ascii tokens, expected decoded attributes
TEMPLATES = [
    (
        "ima-ng",
        td(d_ng("sha256", SHA256_FILE), n_ng("/bin/sh")),
        [f"sha256:{SHA256_FILE.hex()}", "/bin/sh"],
        {"file_hash_alg": "sha256", "file_hash": SHA256_FILE, "path": "/bin/sh"},
    ),
    (
        "ima-sig",
        td(d_ng("sha256", SHA256_FILE), n_ng("/bin/sh"), SIG),
        [f"sha256:{SHA256_FILE.hex()}", "/bin/sh", SIG.hex()],
        {"path": "/bin/sh", "signature": SIG},
    ),
    (
        "ima-sig",
        td(d_ng("sha256", SHA256_FILE), n_ng("/bin/sh"), b""),
        [f"sha256:{SHA256_FILE.hex()}", "/bin/sh", ""],
        {"path": "/bin/sh", "signature": None},
    ),
    (
        "ima-buf",
        td(d_ng("sha256", hashlib.sha256(BUF).digest()), n_ng("kexec-cmdline"), BUF),
        [f"sha256:{hashlib.sha256(BUF).hexdigest()}", "kexec-cmdline", BUF.hex()],
        {"path": "kexec-cmdline", "buf": BUF, "signature": None},
    ),
    (
        "ima-ngv2",
        td(d_ng("sha256", SHA256_FILE, "ima"), n_ng("/bin/sh")),
        [f"ima:sha256:{SHA256_FILE.hex()}", "/bin/sh"],
        {"file_hash_alg": "sha256", "digest_type": "ima", "path": "/bin/sh"},
    ),
    (
        "ima-sigv2",
        td(d_ng("sha512", bytes(64), "verity"), n_ng("/x"), SIG),
        [f"verity:sha512:{bytes(64).hex()}", "/x", SIG.hex()],
        {"file_hash_alg": "sha512", "digest_type": "verity", "signature": SIG},
    ),
    (
        "ima-modsig",
        td(
            d_ng("sha256", SHA256_FILE), n_ng("/lib/m.ko"), b"", d_ng("sha256", SHA256_FILE), MODSIG
        ),
        [
            f"sha256:{SHA256_FILE.hex()}",
            "/lib/m.ko",
            "",
            f"sha256:{SHA256_FILE.hex()}",
            MODSIG.hex(),
        ],
        {"path": "/lib/m.ko", "signature": None},
    ),
    (
        "ima-modsig",
        td(d_ng("sha256", SHA256_FILE), n_ng("/lib/m.ko"), SIG, b"", b""),
        [f"sha256:{SHA256_FILE.hex()}", "/lib/m.ko", SIG.hex(), "", ""],
        {"path": "/lib/m.ko", "signature": SIG},
    ),
    (
        "d-ng|n-ng|buf",  # a custom template is listed by its format string
        td(d_ng("sha1", SHA1_FILE), n_ng("evt"), b"\x00\x01"),
        [f"sha1:{SHA1_FILE.hex()}", "evt", "0001"],
        {"file_hash_alg": "sha1", "path": "evt", "buf": b"\x00\x01"},
    ),
    (
        "ima-ng",  # a name with non-UTF-8 bytes round-trips through surrogateescape
        td(d_ng("sha256", SHA256_FILE), b"/tmp/\xff\xfe\0"),
        None,
        {"path": "/tmp/\udcff\udcfe"},
    ),
]


@pytest.mark.parametrize(("template", "data", "tokens", "attrs"), TEMPLATES)
@pytest.mark.parametrize("alg", ["sha1", "sha256"])
def test_hand_made_entry_parses_in_both_formats(
    template: str, data: bytes, tokens: list[str] | None, attrs: dict[str, object], alg: str
) -> None:
    digest = hashlib.new(alg, data).digest()
    logs = [parse_ima_binary(binary_entry(template, data, alg=alg), template_hash_alg=alg)]
    if tokens is not None:
        logs.append(parse_ima_ascii(ascii_line(template, tokens, digest)))
    for log in logs:
        (entry,) = log.entries
        assert entry.template_name == template
        assert entry.template_data == data
        assert entry.template_digest == digest
        assert entry.template_hash_alg == alg
        assert entry.pcr == 10
        for key, value in attrs.items():
            assert getattr(entry, key) == value, key
        assert find_template_digest_mismatches(log.entries) == ()


def test_ima_template_binary_and_ascii() -> None:
    d = sha1(b"kernel").digest()
    digest = sha1(ima_hashed(d, "/sbin/init")).digest()
    binary = parse_ima_binary(binary_ima_entry(d, "/sbin/init"))
    text = parse_ima_ascii(ascii_line("ima", [d.hex(), "/sbin/init"], digest))
    for log in (binary, text):
        (entry,) = log.entries
        assert entry.template_name == "ima"
        assert entry.template_digest == digest
        assert entry.template_data == ima_hashed(d, "/sbin/init")
        assert len(entry.template_data) == 20 + 256
        assert (entry.file_hash_alg, entry.file_hash, entry.path) == ("sha1", d, "/sbin/init")
        assert find_template_digest_mismatches(log.entries) == ()


def test_ima_template_name_of_255_bytes_is_accepted_256_refused() -> None:
    d = bytes(20)
    ok = parse_ima_binary(binary_ima_entry(d, "a" * 255, digest=b"\x01" * 20))
    assert ok.entries[0].path == "a" * 255
    with pytest.raises(ImaLogError, match="over 255"):
        parse_ima_binary(binary_ima_entry(d, "a" * 256, digest=b"\x01" * 20))
    with pytest.raises(ImaLogError, match="over 255"):
        parse_ima_ascii(ascii_line("ima", [d.hex(), "a" * 256], b"\x01" * 20))


def test_evm_sig_binary_is_decoded_ascii_keeps_no_template_data() -> None:
    data = td(
        d_ng("sha256", SHA256_FILE),
        n_ng("/etc/x"),
        SIG,
        b"security.ima",
        b"\x10\x00",
        b"\x02" * 16,
        struct.pack("<I", 0),
        struct.pack("<I", 0),
        struct.pack("<H", 0o100644),
    )
    digest = sha1(data).digest()
    (binary,) = parse_ima_binary(binary_entry("evm-sig", data)).entries
    assert (binary.path, binary.file_hash, binary.template_data) == ("/etc/x", SHA256_FILE, data)
    assert binary.template_data_known
    tokens = [
        f"sha256:{SHA256_FILE.hex()}",
        "/etc/x",
        SIG.hex(),
        "security.ima",
        "1000",
        "02" * 16,
        "0",
        "0",
        "33188",
    ]
    (text,) = parse_ima_ascii(ascii_line("evm-sig", tokens, digest)).entries
    assert (text.path, text.file_hash, text.template_digest) == ("/etc/x", SHA256_FILE, digest)
    assert not text.template_data_known
    assert find_template_digest_mismatches([text]) == (text,)
    assert find_template_digest_mismatches([binary]) == ()


def test_unknown_template_is_kept_undecoded() -> None:
    raw = b"\x01\x02\x03"
    (binary,) = parse_ima_binary(binary_entry("my-template", raw)).entries
    assert (binary.template_name, binary.template_data, binary.path) == ("my-template", raw, None)
    assert binary.template_data_known
    line = ascii_line("my-template", ["a", "b c"], sha1(raw).digest())
    (text,) = parse_ima_ascii(line).entries
    assert (text.template_name, text.template_data, text.template_data_known) == (
        "my-template",
        b"",
        False,
    )


def test_one_digit_pcr_is_space_padded_in_ascii() -> None:
    data = td(d_ng("sha256", SHA256_FILE), n_ng("/a"))
    line = ascii_line("ima-ng", [f"sha256:{SHA256_FILE.hex()}", "/a"], sha1(data).digest(), pcr=9)
    assert line.startswith(b" 9 ")
    assert parse_ima_ascii(line).entries[0].pcr == 9
    assert parse_ima_binary(binary_entry("ima-ng", data, pcr=9)).entries[0].pcr == 9


def test_first_index_numbers_entries_of_a_list_read_from_an_offset() -> None:
    data = ng_entry() + ng_entry("/b")
    log = parse_ima_binary(data, first_index=100)
    assert [e.index for e in log.entries] == [100, 101]
    assert log.boot_aggregate_entry is None


def test_boot_aggregate_entry_only_at_index_0() -> None:
    data = td(d_ng("sha1", SHA1_FILE), n_ng("boot_aggregate"))
    assert parse_ima_binary(binary_entry("ima-ng", data)).boot_aggregate_entry is not None
    later = parse_ima_binary(ng_entry() + binary_entry("ima-ng", data))
    assert later.entries[1].path == "boot_aggregate"
    assert later.boot_aggregate_entry is None


def test_empty_lists_parse_to_no_entries_with_the_kind_parsers() -> None:
    assert parse_ima_binary(b"").entries == ()
    assert parse_ima_ascii(b"").entries == ()


# --------------------------------------------------------------------------
# Detection (parse_ima).
# --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["sha1", "sha256", "sha384", "sha512"])
def test_parse_ima_detects_the_binary_digest_size(alg: str) -> None:
    log = parse_ima(ng_entry(alg=alg) + ng_entry("/b", alg=alg))
    assert (log.kind, log.template_hash_alg, len(log.entries)) == ("binary", alg, 2)


@pytest.mark.parametrize("alg", ["sha1", "sha256", "sha384", "sha512"])
def test_parse_ima_detects_the_ascii_digest_size(alg: str) -> None:
    data = td(d_ng("sha256", SHA256_FILE), n_ng("/a"))
    line = ascii_line(
        "ima-ng", [f"sha256:{SHA256_FILE.hex()}", "/a"], hashlib.new(alg, data).digest()
    )
    log = parse_ima(line)
    assert (log.kind, log.template_hash_alg) == ("ascii", alg)


def _ambiguous_list() -> bytes:
    """One record that parses both with a 20-byte and a 32-byte template digest."""
    tail = struct.pack("<I", 4) + b"yyyy" + struct.pack("<I", 2) + b"zz"  # 32-byte reading
    region = b"\x01" * 20 + struct.pack("<I", 4) + b"xxxx" + struct.pack("<I", len(tail))
    return struct.pack("<I", 10) + region + tail


def test_ambiguous_binary_list_is_refused_unless_the_algorithm_is_given() -> None:
    data = _ambiguous_list()
    with pytest.raises(ImaUnknownFormatError, match="sha1, sha256"):
        parse_ima(data)
    assert parse_ima(data, template_hash_alg="sha1").entries[0].template_name == "xxxx"
    assert parse_ima(data, template_hash_alg="sha256").entries[0].template_name == "yyyy"


@pytest.mark.parametrize("data", [b"", b"\x18\x00\x00\x00", b"#", b"\xff\xfe"])
def test_parse_ima_refuses_what_is_neither_ascii_nor_binary(data: bytes) -> None:
    with pytest.raises(ImaUnknownFormatError):
        parse_ima(data)


def test_parse_ima_reports_the_furthest_failure_of_a_binary_list() -> None:
    data = ng_entry() + ng_entry()[:-3]
    with pytest.raises(ImaTruncatedError) as info:
        parse_ima(data)
    assert info.value.entry_index == 1
    assert parse_ima(ng_entry() + ng_entry()).template_hash_alg == "sha1"  # twin


def test_unknown_template_hash_alg_is_refused() -> None:
    with pytest.raises(ImaUnsupportedAlgorithmError) as info:
        parse_ima_binary(ng_entry(), template_hash_alg="md5")
    assert info.value.alg == "md5"
    with pytest.raises(ImaUnsupportedAlgorithmError):
        parse_ima_ascii(b"", template_hash_alg="sha3")


# --------------------------------------------------------------------------
# Malformed binary input (each with its positive twin).
# --------------------------------------------------------------------------


def test_every_truncation_of_a_binary_list_is_refused_or_tolerated() -> None:
    first, second = ng_entry(), ng_entry("/b")
    whole = first + second
    assert len(parse_ima_binary(whole).entries) == 2
    for cut in range(len(first) + 1, len(whole)):
        with pytest.raises(ImaTruncatedError) as info:
            parse_ima_binary(whole[:cut])
        assert info.value.entry_index == 1
        assert info.value.offset is not None and info.value.offset >= len(first)
        lenient = parse_ima_binary(whole[:cut], allow_trailing_partial=True)
        assert len(lenient.entries) == 1
        assert lenient.trailing_partial == cut - len(first)


@pytest.mark.parametrize(("pcr", "ok"), [(23, True), (24, False), (0x0A000000, False)])
def test_binary_pcr_index_must_be_below_24(pcr: int, ok: bool) -> None:
    data = ng_entry(pcr=pcr)
    if ok:
        assert parse_ima_binary(data).entries[0].pcr == pcr
    else:
        with pytest.raises(ImaLogError, match="PCR"):
            parse_ima_binary(data)


def test_template_name_length_limit() -> None:
    limits = ImaLimits(max_template_name_len=6)
    assert parse_ima_binary(ng_entry(), limits=limits).entries  # "ima-ng" is 6 bytes
    with pytest.raises(ImaLogLimitError):
        parse_ima_binary(ng_entry(), limits=ImaLimits(max_template_name_len=5))


def test_template_data_length_limit() -> None:
    size = len(td(d_ng("sha256", SHA256_FILE), n_ng("/usr/bin/true")))
    assert parse_ima_binary(ng_entry(), limits=ImaLimits(max_template_data_len=size)).entries
    with pytest.raises(ImaLogLimitError) as info:
        parse_ima_binary(ng_entry(), limits=ImaLimits(max_template_data_len=size - 1))
    assert (info.value.entry_index, info.value.offset) == (0, 0)


def test_entry_count_limit() -> None:
    data = ng_entry() * 3
    assert len(parse_ima_binary(data, limits=ImaLimits(max_entries=3)).entries) == 3
    with pytest.raises(ImaLogLimitError) as info:
        parse_ima_binary(data, limits=ImaLimits(max_entries=2))
    assert info.value.entry_index == 2
    ascii_data = read_list(ASCII_LIST)
    with pytest.raises(ImaLogLimitError):
        parse_ima_ascii(ascii_data, limits=ImaLimits(max_entries=10))


def test_list_size_limit() -> None:
    data = ng_entry()
    assert parse_ima(data, limits=ImaLimits(max_bytes=len(data))).entries
    for parser in (parse_ima, parse_ima_binary, parse_ima_ascii):
        with pytest.raises(ImaLogLimitError):
            parser(data, limits=ImaLimits(max_bytes=len(data) - 1))


def test_path_length_limit() -> None:
    data = ng_entry("/" + "a" * 99)
    assert parse_ima_binary(data, limits=ImaLimits(max_path_len=100)).entries
    with pytest.raises(ImaLogLimitError):
        parse_ima_binary(data, limits=ImaLimits(max_path_len=99))


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_limits_must_be_positive_ints(bad: object) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        ImaLimits(max_entries=bad)  # type: ignore[arg-type]
    assert ImaLimits(max_entries=1).max_entries == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (td(d_ng("sha256", SHA256_FILE), n_ng("/a")) + b"\0", "after the last template field"),
        (td(d_ng("sha256", SHA256_FILE)), "ends before field 1"),
        (td(d_ng("sha256", SHA256_FILE), b"/a"), "NUL-terminated"),
        (td(d_ng("sha256", SHA256_FILE), b"/a\0b\0"), "NUL-terminated"),
        (td(b"sha256" + SHA256_FILE, n_ng("/a")), "alg:"),
        (td(b"SHA 256:\0" + SHA256_FILE, n_ng("/a")), "algorithm prefix"),
        (td(b"ima:sha256:\0" + SHA256_FILE, n_ng("/a")), "algorithm prefix"),
        (struct.pack("<I", 99) + b"x", "runs past"),
    ],
)
def test_malformed_template_fields_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImaLogError, match=message) as info:
        parse_ima_binary(ng_entry() + binary_entry("ima-ng", data))
    assert type(info.value) is ImaLogError
    assert (info.value.entry_index, info.value.offset) == (1, len(ng_entry()))
    # twin: the same bytes under a template soapattest does not decode are kept as is
    assert parse_ima_binary(binary_entry("opaque", data)).entries[0].template_data == data


@pytest.mark.parametrize("name", [b"", b"ima ng", b"ima\x00", b"\xc3\xa9"])
def test_malformed_binary_template_names_are_refused(name: bytes) -> None:
    data = td(d_ng("sha256", SHA256_FILE), n_ng("/a"))
    record = struct.pack("<I", 10) + bytes(20) + struct.pack("<I", len(name)) + name
    record += struct.pack("<I", len(data)) + data
    with pytest.raises(ImaLogError, match="template name"):
        parse_ima_binary(record)


def test_ima_template_d_field_must_be_a_sha1_or_md5_digest() -> None:
    line_ok = ascii_line("ima", [bytes(20).hex(), "/a"], b"\x01" * 20)
    assert parse_ima_ascii(line_ok).entries[0].file_hash == bytes(20)
    with pytest.raises(ImaLogError, match="not a sha1 or md5"):
        parse_ima_ascii(ascii_line("ima", [bytes(21).hex(), "/a"], b"\x01" * 20))


# --------------------------------------------------------------------------
# Malformed ascii input (each with its positive twin).
# --------------------------------------------------------------------------

GOOD_LINE = ascii_line(
    "ima-ng",
    [f"sha256:{SHA256_FILE.hex()}", "/a"],
    sha1(td(d_ng("sha256", SHA256_FILE), n_ng("/a"))).digest(),
)


def test_good_ascii_line_parses() -> None:
    log = parse_ima_ascii(GOOD_LINE * 2)
    assert len(log.entries) == 2
    assert find_template_digest_mismatches(log.entries) == ()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda line: line.replace(b"/a", b"/a extra"), "has 2 fields, the line 3"),
        (lambda line: line.replace(b" /a", b""), "has 2 fields, the line 1"),
        (lambda line: b"100" + line[2:], "malformed PCR"),
        (lambda line: b"24" + line[2:], "out of range"),
        (lambda line: b"1a" + line[2:], "malformed PCR"),
        (lambda line: b"  " + line[2:], "malformed PCR"),
        (lambda line: line[:3] + b"zz" + line[5:], "not hex"),
        (lambda line: line[:3] + line[5:], "hex digits"),
        (lambda line: line.replace(b"sha256:", b"sha256:a b"), "fields"),
        (lambda line: line.replace(b"sha256:", b"sha256"), "no 'alg:' prefix"),
        (lambda line: line.replace(b"sha256:", b"sha256:0"), "not hex"),
        (lambda line: line.replace(b"/a", b"/\x00"), "NUL"),
        (lambda line: line.replace(b"ima-ng", b"ima\x7fng"), "template name"),
        (lambda line: b"\n", "empty line"),
        (lambda line: b"10 abc\n", "fewer than 3"),
    ],
)
def test_malformed_ascii_lines_are_refused(mutate: object, message: str) -> None:
    bad = mutate(GOOD_LINE)  # type: ignore[operator]
    with pytest.raises(ImaLogError, match=message) as info:
        parse_ima_ascii(GOOD_LINE + bad, template_hash_alg="sha1")
    assert type(info.value) is ImaLogError
    assert (info.value.entry_index, info.value.line, info.value.offset) == (1, 2, len(GOOD_LINE))


def test_ascii_digest_lengths_must_not_change_within_a_list() -> None:
    sha256_line = ascii_line("ima-ng", [f"sha256:{SHA256_FILE.hex()}", "/a"], SHA256_FILE)
    assert parse_ima_ascii(sha256_line * 2).template_hash_alg == "sha256"
    with pytest.raises(ImaLogError, match="64 hex digits, sha1 needs 40"):
        parse_ima_ascii(GOOD_LINE + sha256_line)


def test_ascii_first_line_digest_length_must_name_an_algorithm() -> None:
    with pytest.raises(ImaLogError, match="cannot tell"):
        parse_ima_ascii(b"10 abcd ima-ng sha1:00 /a\n")
    with pytest.raises(ImaLogError, match="4 hex digits, sha1 needs 40"):
        parse_ima_ascii(b"10 abcd ima-ng sha1:00 /a\n", template_hash_alg="sha1")


def test_ascii_uppercase_hex_is_accepted_and_decoded() -> None:
    upper = GOOD_LINE.replace(SHA256_FILE.hex().encode(), SHA256_FILE.hex().upper().encode())
    assert parse_ima_ascii(upper).entries[0].file_hash == SHA256_FILE


def test_ascii_last_line_without_newline() -> None:
    data = GOOD_LINE + GOOD_LINE[:-1]
    with pytest.raises(ImaTruncatedError) as info:
        parse_ima_ascii(data)
    assert (info.value.entry_index, info.value.line) == (1, 2)
    lenient = parse_ima_ascii(data, allow_trailing_partial=True)
    assert (len(lenient.entries), lenient.trailing_partial) == (1, len(GOOD_LINE) - 1)


def test_ascii_line_length_limit() -> None:
    limits = ImaLimits(max_template_data_len=10, max_template_name_len=10)
    long_line = b"1" * (limits.max_line_len + 1) + b"\n"
    with pytest.raises(ImaLogLimitError, match="line longer"):
        parse_ima_ascii(long_line, limits=limits)
    with pytest.raises(ImaLogLimitError, match="line longer"):
        parse_ima_ascii(long_line[:-1], limits=limits)
    with pytest.raises(ImaLogLimitError, match="template data over 10"):
        parse_ima_ascii(GOOD_LINE, limits=limits)  # twin of the line check: the line fits
