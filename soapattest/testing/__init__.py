"""Support for tests and benchmarks only. Production code never imports this package.

Everything here is unsafe by design (software keys that claim to be TPM keys)
and is named ``unsafe_*`` accordingly.
"""
