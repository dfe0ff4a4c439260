"""Per-user question rate limit: at most N questions in any 60-second window.

A sliding window (the times of a user's recent questions), so a burst cannot straddle two
fixed minutes to get 2N through. State is per process: the UI is one process per replica; with
several replicas behind a load balancer each enforces the limit alone (deploy/README.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

WINDOW_S = 60.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: float = 0.0
    limit: int = 0

    @property
    def message(self) -> str:
        if self.allowed:
            return ""
        wait = max(1, math.ceil(self.retry_after_s))
        return (f"You have asked {self.limit} questions in the last minute, the most allowed. "
                f"Please wait {wait} second{'s' if wait != 1 else ''} and ask again.")


class RateLimitedError(PermissionError):
    """Raised instead of a refusal for a front end with its own way to say it (HTTP 429)."""

    def __init__(self, decision: RateDecision):
        super().__init__(decision.message)
        self.decision = decision
        self.retry_after_s = decision.retry_after_s


class RateLimiter:
    """``RateLimiter(30).check("alice")``; ``per_minute=0`` turns the limit off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        if per_minute < 0:
            raise ValueError(f"questions_per_minute must be >= 0 (0 = no limit), got {per_minute}")
        self.per_minute = per_minute
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, user: str) -> RateDecision:
        """Count one question for ``user`` if it is allowed; a refused one is not counted, so
        a user who keeps retrying gets in as soon as the window frees up."""
        if self.per_minute == 0:
            return RateDecision(True)
        now = self._clock()
        with self._lock:
            recent = self._recent.setdefault(user, deque())
            while recent and recent[0] <= now - WINDOW_S:
                recent.popleft()
            if len(recent) >= self.per_minute:
                return RateDecision(False, recent[0] + WINDOW_S - now, self.per_minute)
            recent.append(now)
            if len(self._recent) > 10_000:  # forget idle users so memory stays bounded
                for name in [u for u, q in self._recent.items() if not q or q[-1] <= now - WINDOW_S]:
                    del self._recent[name]
            return RateDecision(True, 0.0, self.per_minute)
