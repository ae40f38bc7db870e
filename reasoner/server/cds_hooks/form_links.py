"""Short-lived keys for the CDS Hooks form links: what an undetermined order's card links to.

Why a server-side key: the card's link opens the clinician's form pre-filled for this
patient and order, and a URL must never carry patient data (it ends up in browser
histories, proxy and server logs). So the patient data the hook call gathered, and the
call's order context, stay in this server's memory under a random key (256 bits from
``secrets``), and the link carries only the key. A key lives ``ttl`` seconds from the call
(the clinician follows the link while ordering) and at most ``capacity`` keys are kept (the
oldest go first), so memory is bounded whatever the callers do. The access token of the
client's FHIR server is not kept: the data were gathered at the call, and nothing is
fetched again. Keys live in one server process; a restart forgets them (the link then
says it has expired, and the order is simply called again).

The key is a capability: whoever holds the link sees the pre-filled form while it lives,
as whoever holds the card does. The link is meant for the EHR user the card was shown to.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from .request import HookRequest


@dataclass(frozen=True)
class PendingOrder:
    """An undetermined order waiting for answers: the service called, the checked request
    (without its prefetch and FHIR access token) and the patient data gathered for it."""

    service_id: str
    request: HookRequest
    bundle: dict


class FormLinks:
    """Keys to pending orders, each for ``ttl`` seconds, at most ``capacity`` at a time."""

    def __init__(self, ttl: float, capacity: int = 1000, clock: Callable[[], float] = time.monotonic):
        if ttl <= 0 or capacity < 1:
            raise ValueError("form links need a positive lifetime and room for at least one")
        self.ttl, self.capacity, self.clock = ttl, capacity, clock
        self._kept: OrderedDict[str, tuple[float, PendingOrder]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, service_id: str, request: HookRequest, bundle: dict) -> str:
        """Keep the order's data; the key its link carries."""
        key = secrets.token_urlsafe(32)
        pending = PendingOrder(service_id, replace(request, prefetch={}, access_token=None), bundle)
        with self._lock:
            self._forget_expired()
            self._kept[key] = (self.clock() + self.ttl, pending)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        return key

    def get(self, key: str) -> PendingOrder | None:
        """The pending order of a live key; None for an unknown or expired one."""
        with self._lock:
            self._forget_expired()
            kept = self._kept.get(key)
        return kept[1] if kept else None

    def _forget_expired(self) -> None:
        now = self.clock()
        while self._kept and next(iter(self._kept.values()))[0] <= now:
            self._kept.popitem(last=False)
