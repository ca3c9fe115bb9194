"""Readiness: the server warms its models in the background and `/readyz` says when it is done.

Loading a CLIP model and building its kernels takes seconds; doing it on the first request
makes the first query of every server start slow (3.2 s measured for the default model). The
app starts a thread that warms every collection (`SearchEngine.warm`) as soon as it starts;
requests are served meanwhile (a query that arrives early waits for the same load, it never
loads twice). `/readyz` answers 200 once the catalog is reachable and warming has finished,
503 with the reason before that or when warming failed (missing weights, say).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

from search.errors import PixseekError
from search.query.engine import SearchEngine

__all__ = ["Readiness"]

logger = logging.getLogger(__name__)

State = Literal["warming", "ready", "failed"]


class Readiness:
    """The warm-up of one app: state, reason, and what was warmed."""

    def __init__(self) -> None:
        self.state: State = "warming"
        self.reason = "the models are loading"
        self.collections: list[str] = []
        self.seconds: float | None = None
        self._thread: threading.Thread | None = None

    def start(self, engine: SearchEngine, *, warm: bool) -> None:
        """Warm `engine` in a background thread (or mark ready at once when `warm` is off)."""
        if not warm:
            self.state, self.reason = "ready", "warming is off (PIXSEEK_WARM_ON_START=false)"
            return
        self._thread = threading.Thread(
            target=self._warm, args=(engine,), name="pixseek-warm", daemon=True
        )
        self._thread.start()

    def _warm(self, engine: SearchEngine) -> None:
        started = time.perf_counter()
        try:
            self.collections = engine.warm()
        except PixseekError as exc:
            self.state, self.reason = "failed", str(exc)
            logger.warning("Warming the search models failed: %s", exc)
            return
        except Exception as exc:  # a warm-up bug must not take the server down
            self.state, self.reason = "failed", f"{type(exc).__name__}: {exc}"
            logger.exception("Warming the search models failed")
            return
        self.seconds = time.perf_counter() - started
        self.state, self.reason = "ready", "ready"
        logger.info("Warmed %d collection(s) in %.1f s.", len(self.collections), self.seconds)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for warming to end (the app's shutdown does, before closing the catalog)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state != "warming"
