"""soapattest: remote attestation server for trusted compute pools.

Layers (dependencies point inward only)::

    errors / model  <-  tpm  <-  verify  <-  service | agent | client | sim
    store depends only on errors / model
"""

__version__ = "0.1.0"
