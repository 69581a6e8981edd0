"""The replay's sealed records, kept in memory: the chain a vehicle would have built from the log.

A replay seals exactly as the agent does (``agent.sealing.Sealer``), into this store instead of
straight into the durable outbox: a replay of weeks of logs holds a few kilobytes per trip. With
``--publish`` the store also hands every record on to an outbox (``forward_to``), from which the
agent's uplink delivers it as it would from the car.
"""

from agent.outbox import ChainHead
from agent.sealing import SealedStore
from carbonlink.chain import record_hash


class SealedRecords:
    """Signed records in chain order; implements :class:`agent.sealing.SealedStore`."""

    def __init__(self, forward_to: SealedStore | None = None) -> None:
        self.signed: list[bytes] = []
        self._forward_to = forward_to
        self._head = None if forward_to is None else forward_to.chain_head()
        """Continues the chain of the outbox it forwards to: a second replay into it appends."""

    def chain_head(self) -> ChainHead | None:
        return self._head

    def append(self, signed: bytes, sequence: int, record_id: str) -> None:
        if self._forward_to is not None:
            self._forward_to.append(signed, sequence, record_id)  # first: a refused record is not kept
        self.signed.append(signed)
        self._head = ChainHead(sequence=sequence, record_hash=record_hash(signed))
