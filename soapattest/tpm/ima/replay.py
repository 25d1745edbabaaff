"""IMA PCR replay, template-digest consistency and the boot_aggregate.

Follows the kernel (security/integrity/ima/ima_queue.c, ima_crypto.c):

1. Every entry is extended into its PCR (``ima_pcr_extend``) in every allocated
   bank: ``PCR = H(PCR || d)`` with H the bank's hash.
2. ``d`` is the entry's template digest in that bank: ``H(template_data)``
   (``ima_calc_field_array_hash``, computed per bank since kernel 5.1). The list
   records only one bank's digest; for that bank the recorded digest is used, for
   the others ``H(template_data)`` is computed.
3. A violation (recorded template digest all zero) extends ``0xFF`` * digest size
   in every bank (``ima_add_template_entry``).

Kernels before 5.1 extended the sha1 template digest zero-padded into every bank;
such lists replay only into the sha1 bank here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from soapattest.errors import (
    ImaBootAggregateError,
    ImaLogError,
    ImaTemplateDataUnavailableError,
    ImaUnsupportedAlgorithmError,
)
from soapattest.tpm.constants import HashAlgorithm, hash_by_name
from soapattest.tpm.ima.model import BOOT_AGGREGATE_NAME, IMA_PCR, ImaEntry

# Kernel hash_algo_name[] -> soapattest bank name (the kernel calls SM3 "sm3").
_KERNEL_ALG_TO_BANK = {
    "sha1": "sha1",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    "sm3": "sm3_256",
    "sm3-256": "sm3_256",
}


_FAST_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def _bank(bank: str) -> HashAlgorithm:
    h = hash_by_name(bank)
    if h is None:
        raise ImaUnsupportedAlgorithmError(f"unknown PCR bank {bank!r}", alg=bank)
    return h


def _extend_digest(entry: ImaEntry, h: HashAlgorithm, ff: bytes) -> bytes:
    if entry.is_violation:
        return ff  # step 3
    if entry.template_hash_alg == h.name:
        return entry.template_digest  # step 2, recorded bank
    if not entry.template_data_known:
        raise ImaTemplateDataUnavailableError(
            f"template {entry.template_name!r} data is not known (ascii list); it replays "
            f"only into the {entry.template_hash_alg} bank",
            entry_index=entry.index,
        )
    return h.digest(entry.template_data)  # step 2, other banks


def replay_ima(
    entries: Iterable[ImaEntry],
    bank: str,
    *,
    start: bytes | None = None,
    pcr: int = IMA_PCR,
) -> bytes:
    """The value of PCR ``pcr`` (default 10) in ``bank`` after extending ``entries``.

    ``start`` is the PCR value before the first entry (default all zero: the value
    at boot); pass the value after earlier entries to appraise a list read from an
    offset. Entries for other PCRs are skipped.

    Returns the digest; comparing it with a *quoted* PCR value is what makes the
    list trustworthy - the entries themselves are untrusted. Raises
    :class:`ImaUnsupportedAlgorithmError` for an unknown bank, :class:`ImaLogError`
    for a ``start`` of the wrong size, :class:`ImaTemplateDataUnavailableError` when
    an entry's template data is unknown and ``bank`` differs from its recorded bank.
    """
    h = _bank(bank)
    value = bytes(h.digest_size) if start is None else bytes(start)
    if len(value) != h.digest_size:
        raise ImaLogError(f"start value is {len(value)} bytes, {bank} needs {h.digest_size}")
    ff = b"\xff" * h.digest_size
    zero = bytes(h.digest_size)
    new = _FAST_HASHES.get(h.name, h.new)
    name = h.name
    for entry in entries:
        if entry.pcr != pcr:
            continue
        if entry.template_hash_alg == name:  # fast path of _extend_digest
            digest = entry.template_digest
            value = new(value + (ff if digest == zero else digest)).digest()
        elif entry.template_data_known and not entry.is_violation:
            value = new(value + new(entry.template_data).digest()).digest()
        else:
            value = new(value + _extend_digest(entry, h, ff)).digest()
    return bytes(value)


def replay_ima_pcrs(
    entries: Iterable[ImaEntry], bank: str, *, start: Mapping[int, bytes] | None = None
) -> dict[int, bytes]:
    """Replay every PCR the entries name (IMA policies may use PCRs other than 10).

    Returns ``{pcr: value}`` for each PCR that at least one entry extends; ``start``
    gives earlier values per PCR. Raises like :func:`replay_ima`.
    """
    h = _bank(bank)
    values = {p: bytes(v) for p, v in (start or {}).items()}
    for p, v in values.items():
        if len(v) != h.digest_size:
            raise ImaLogError(
                f"start value of PCR {p} is {len(v)} bytes, {bank} needs {h.digest_size}"
            )
    ff = b"\xff" * h.digest_size
    zero = bytes(h.digest_size)
    for entry in entries:
        old = values.get(entry.pcr, zero)
        values[entry.pcr] = bytes(h.new(old + _extend_digest(entry, h, ff)).digest())
    return values


def find_template_digest_mismatches(entries: Iterable[ImaEntry]) -> tuple[ImaEntry, ...]:
    """Entries whose recorded template digest is not ``H(template_data)``.

    H is the entry's ``template_hash_alg``. Violations are skipped (the kernel
    records zeros for them). Entries whose template data is unknown (ascii,
    undecodable template) are returned too: they cannot be shown consistent.

    A mismatch means the file hash, name or signature shown is not what was
    measured: an entry edited after the fact. (An entry whose template digest was
    recomputed after the edit passes this check and fails the PCR replay instead.)
    """
    bad: list[ImaEntry] = []
    for entry in entries:
        if entry.is_violation:
            continue
        if not entry.template_data_known:
            bad.append(entry)
            continue
        h = _bank(entry.template_hash_alg)
        if not hmac.compare_digest(h.digest(entry.template_data), entry.template_digest):
            bad.append(entry)
    return tuple(bad)


def boot_aggregate(pcrs: Mapping[int, bytes], bank: str) -> bytes:
    """The IMA boot_aggregate of a PCR bank (kernel >= 5.8 ``ima_calc_boot_aggregate``).

    - sha1 bank: ``SHA1(PCR0 || ... || PCR7)``;
    - every other bank: ``H(PCR0 || ... || PCR9)`` with H the bank's hash (PCR 8-9
      hold the kernel command line and image on most boot loaders).

    Kernels before 5.8 used PCR0-7 in every bank: compare such lists' non-sha1
    boot_aggregate with care. ``pcrs`` maps PCR index to value. Raises
    :class:`ImaBootAggregateError` when a needed PCR is missing or has the wrong
    size, :class:`ImaUnsupportedAlgorithmError` for an unknown bank.
    """
    h = _bank(bank)
    count = 8 if h.name == "sha1" else 10
    parts: list[bytes] = []
    for i in range(count):
        value = pcrs.get(i)
        if value is None:
            raise ImaBootAggregateError(f"boot_aggregate ({bank}) needs PCR {i}")
        if len(value) != h.digest_size:
            raise ImaBootAggregateError(
                f"PCR {i} is {len(value)} bytes, the {bank} bank needs {h.digest_size}"
            )
        parts.append(bytes(value))
    return h.digest(b"".join(parts))


def boot_aggregate_bank(entry: ImaEntry) -> str:
    """The PCR bank a boot_aggregate entry was computed from (its file hash algorithm).

    Raises :class:`ImaBootAggregateError` if ``entry`` is not a boot_aggregate entry
    or its algorithm is not a supported bank.
    """
    return _boot_aggregate_claim(entry)[0]


def _boot_aggregate_claim(entry: ImaEntry) -> tuple[str, bytes]:
    if entry.path != BOOT_AGGREGATE_NAME or entry.file_hash is None:
        raise ImaBootAggregateError(
            f"entry {entry.index} is not a boot_aggregate entry", entry_index=entry.index
        )
    bank = _KERNEL_ALG_TO_BANK.get(entry.file_hash_alg or "")
    if bank is None:
        raise ImaBootAggregateError(
            f"boot_aggregate algorithm {entry.file_hash_alg!r} is not a supported bank",
            entry_index=entry.index,
        )
    return bank, entry.file_hash


def check_boot_aggregate(entry: ImaEntry, pcrs: Mapping[int, bytes]) -> bool:
    """Whether a boot_aggregate entry matches PCR values of its bank.

    ``pcrs`` must be the (verified, e.g. quoted or firmware-log-replayed) values of
    the bank :func:`boot_aggregate_bank` names. Raises like :func:`boot_aggregate`
    and :func:`boot_aggregate_bank`. Constant-time comparison.
    """
    bank, claimed = _boot_aggregate_claim(entry)
    return hmac.compare_digest(boot_aggregate(pcrs, bank), claimed)
