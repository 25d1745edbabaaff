"""The one hardened lxml parser configuration for untrusted XML (requests and answers)."""

from __future__ import annotations

from lxml import etree


def hardened_parser(*, keep_processing_instructions: bool = False) -> etree.XMLParser:
    """An lxml parser that loads no DTD, resolves no entity, touches no network, refuses
    huge trees and drops comments. ``keep_processing_instructions`` keeps PIs in the
    tree (for a guard that refuses them) instead of dropping them."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=not keep_processing_instructions,
        strip_cdata=False,
    )
