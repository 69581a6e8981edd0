"""Crediting: accepted records into a hash-chained ledger of credits, issued with owner consent, forwarded.

``service`` decides and issues, ``worker`` keeps it running next to intake, ``settings`` reads the
``[crediting]`` and ``[forwarding]`` tables, ``model`` holds the values. The methodology itself is
pure and shared (``carbonlink.methodology``), and so is the ledger's format (``carbonlink.ledger``,
``carbonlink.credit_entries``), so that ``carbonlink audit`` recomputes everything offline.
"""
