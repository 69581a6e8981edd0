"""carbonlink: measured EV energy, signed at the source, checked before crediting.

This package is the shared, pure core: record types, their wire encoding, the signed
envelope, device keys, the record chain and topic names. It performs no I/O, reads no
clock and keeps no global state; the apps (``agent``, ``gateway``, ``simulator``) and the
CLI (``carbonlink.cli``) do that at their edges.
"""

__version__ = "0.1.0"
