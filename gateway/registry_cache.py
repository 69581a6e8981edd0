"""The device registry as intake reads it: cached for a moment, so verification rarely waits on the database.

A device's entry (its keys and their status) is kept for ``refresh_s`` seconds, unknown devices
too — so a flood of messages from an unregistered id costs one query per interval, not one per
message. An operator's revocation therefore takes effect within ``refresh_s``; a registration by
enrolment in this process takes effect at once (:meth:`RegistryCache.forget`).
"""

import threading
import time
from collections.abc import Callable

from gateway.model import Device
from gateway.store.record_store import RecordStore

MAX_CACHED_DEVICES = 100_000
"""Beyond this the cache starts again empty: bounded memory whatever ids arrive."""


class RegistryCache:
    """Devices by id, read through from the store and kept ``refresh_s`` seconds."""

    def __init__(self, store: RecordStore, refresh_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store, self._refresh_s, self._monotonic = store, refresh_s, monotonic
        self._entries: dict[str, tuple[float, Device | None]] = {}
        self._lock = threading.Lock()

    def device(self, device_id: str) -> Device | None:
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(device_id)
        if entry is not None and now - entry[0] < self._refresh_s:
            return entry[1]
        device = self._store.device(device_id)
        with self._lock:
            if len(self._entries) >= MAX_CACHED_DEVICES:
                self._entries.clear()
            self._entries[device_id] = (now, device)
        return device

    def forget(self, device_id: str) -> None:
        """Read this device from the store next time (it was just registered or changed here)."""
        with self._lock:
            self._entries.pop(device_id, None)
