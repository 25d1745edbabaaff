"""Domain values of a parsed Linux IMA measurement list (frozen, immutable)."""

from __future__ import annotations

from dataclasses import dataclass

IMA_PCR = 10  # CONFIG_IMA_MEASURE_PCR_IDX, the kernel default
IMA_EVENT_NAME_LEN_MAX = 255  # the 'ima' template's name field is padded to 256 bytes
BOOT_AGGREGATE_NAME = "boot_aggregate"

KIND_ASCII = "ascii"
KIND_BINARY = "binary"


@dataclass(frozen=True, slots=True)
class ImaLimits:
    """Bounds applied while parsing an untrusted IMA list (checked before allocation).

    - ``max_bytes`` 64 MiB: a busy server's list after weeks of uptime is tens of MiB.
    - ``max_entries`` 1,000,000.
    - ``max_template_name_len`` 128: the kernel's longest template name (a custom
      format string) is about 70 bytes.
    - ``max_template_data_len`` 1 MiB per entry: ``ima-buf`` buffers (kexec command
      line, device-mapper tables, keys) are a few KiB.
    - ``max_path_len`` 4096 (PATH_MAX): the file / event name of one entry.
    """

    max_bytes: int = 64 * 1024 * 1024
    max_entries: int = 1_000_000
    max_template_name_len: int = 128
    max_template_data_len: int = 1024 * 1024
    max_path_len: int = 4096

    def __post_init__(self) -> None:
        for name in (
            "max_bytes",
            "max_entries",
            "max_template_name_len",
            "max_template_data_len",
            "max_path_len",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ImaLimits.{name} must be a positive int, not {value!r}")

    @property
    def max_line_len(self) -> int:
        """Longest ascii line accepted: the template data hex-encoded, plus the header."""
        return 2 * self.max_template_data_len + self.max_template_name_len + 512


DEFAULT_LIMITS = ImaLimits()


@dataclass(frozen=True, slots=True)
class ImaEntry:
    """One entry of an IMA measurement list (untrusted until replayed against a quote).

    ``template_data`` is the exact byte string the kernel hashed into the template
    digest: for every template but ``ima`` it is the binary list's template data
    (``u32 length + field`` per field, host byte order = little-endian); for the
    ``ima`` template it is ``sha1 digest (20) || name || zero padding to 256 bytes``
    (``ima_calc_field_array_hash``). So ``H(template_data)`` is the template digest
    in every bank H.

    ``path`` is the file name (or event name, e.g. ``boot_aggregate`` or an
    ``ima-buf`` event) decoded from bytes with ``surrogateescape`` (round-trips via
    ``os.fsencode``); the kernel writes spaces in names as ``_``.
    ``signature`` / ``buf`` are ``None`` when the template has no such field or the
    field is empty. ``digest_type`` is the ``d-ngv2`` digest type (``ima``/``verity``).
    ``template_data_known`` is ``False`` only for ascii entries of templates whose
    fields cannot be rebuilt from their ascii form (``evm-sig``, unknown templates):
    such entries replay only into the bank of their recorded template digest.
    """

    index: int
    pcr: int
    template_digest: bytes
    template_name: str
    template_data: bytes
    file_hash_alg: str | None
    file_hash: bytes | None
    path: str | None
    signature: bytes | None
    buf: bytes | None
    template_hash_alg: str = "sha1"
    digest_type: str | None = None
    template_data_known: bool = True

    @property
    def is_violation(self) -> bool:
        """True when the recorded template digest is all zero (a ToMToU/open-writers
        violation: the kernel extended all-0xFF into the PCR instead)."""
        return not any(self.template_digest)


@dataclass(frozen=True, slots=True)
class ImaLog:
    """A parsed IMA list.

    ``kind`` is ``"ascii"`` or ``"binary"``; ``template_hash_alg`` the bank name of
    the recorded template digests; ``trailing_partial`` the number of bytes after the
    last complete entry that were ignored (only non-zero when the parser was asked
    to tolerate a truncated last entry).
    """

    kind: str
    template_hash_alg: str
    entries: tuple[ImaEntry, ...]
    trailing_partial: int = 0

    @property
    def violations(self) -> int:
        """Number of violation entries."""
        return sum(1 for e in self.entries if e.is_violation)

    @property
    def templates(self) -> dict[str, int]:
        """Entry count per template name."""
        counts: dict[str, int] = {}
        for e in self.entries:
            counts[e.template_name] = counts.get(e.template_name, 0) + 1
        return counts

    @property
    def boot_aggregate_entry(self) -> ImaEntry | None:
        """The boot_aggregate entry: the list's entry with index 0 named
        ``boot_aggregate``, else ``None``.

        Only index 0 counts: a later entry can carry that name too (a file whose
        path the kernel could not resolve is recorded by its bare name).
        """
        if self.entries:
            first = self.entries[0]
            if first.index == 0 and first.path == BOOT_AGGREGATE_NAME:
                return first
        return None
