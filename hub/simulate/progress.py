"""What a ``hub simulate`` run tells its user: the progress line, Ctrl-C handling, stderr messages, and the
account of the events generated but not sent (:func:`unsent`, :func:`explain_unsent`).

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(out, quiet=False, interval=0.0)
    >>> p.update({"elapsed_s": 2.0, "sent": 1000, "accepted": 998, "rejected": 2, "throttled": 0, "errors": 0,
    ...           "achieved_rate": 500.0, "target_rate": 500.0}, force=True)
    >>> print(out.getvalue(), end="")
    hub simulate:     2.0s  sent 1,000  accepted 998  rejected 2  throttled 0  errors 0  rate 500/s (target 500/s)
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any


class Progress:
    """A single updating line on a terminal, periodic lines otherwise."""

    def __init__(self, stream: IO[str], *, quiet: bool, interval: float) -> None:
        self.stream = stream
        self.quiet = quiet
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = 0.25 if self.tty else interval
        self.last = time.monotonic()
        self.wrote_tty = False

    def line(self, s: dict[str, Any]) -> str:
        return (
            f"hub simulate: {s['elapsed_s']:7.1f}s  sent {s['sent']:,}  accepted {s['accepted']:,}  "
            f"rejected {s['rejected']:,}  throttled {s['throttled']:,}  errors {s['errors']:,}  "
            f"rate {s['achieved_rate']:,.0f}/s (target {s['target_rate']:,.0f}/s)"
            + (f"  behind {s['lag_s']:.1f}s" if s.get("lag_s", 0.0) > 1.0 else "")
        )

    def update(self, s: dict[str, Any], *, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line(s))
            self.wrote_tty = True
        else:
            self.stream.write(self.line(s) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.wrote_tty:
            self.stream.write("\n")
            self.stream.flush()


def _graceful_interrupt(stop: threading.Event) -> Callable[[], None]:
    """Make the first SIGINT set ``stop`` (and the next raise KeyboardInterrupt); returns the undo.

    Outside the main thread (signals cannot be handled there) it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        _err("interrupted: finishing the batches in flight (Ctrl-C again to abandon them)")

    signal.signal(signal.SIGINT, on_sigint)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


def _err(msg: str) -> None:
    sys.stderr.write(f"hub simulate: {msg}\n")
    sys.stderr.flush()


def unsent(generated: int, handed: int, sent: int, given_up: int, late: int = 0) -> dict[str, int]:
    """Why ``generated - sent`` events were not sent (``total``), so that none goes missing silently:

    * ``after_end``: generated ahead (a batch at a time) but due after the run ended (the end of
      ``--duration``, a Ctrl-C, a failure): never handed to the sender;
    * ``late``: due before a wall-clock end of ``--duration`` that came while the sender was behind
      schedule (the destination could not keep up: see ``lag_s``);
    * ``given_up``: handed over and given up after the retries (5xx, throttled 60 times in a row);
    * ``abandoned``: handed over and never answered (a second Ctrl-C, or the destination failed).

    >>> unsent(10_500, 10_008, 10_008, 0)
    {'total': 492, 'after_end': 492, 'late': 0, 'given_up': 0, 'abandoned': 0}
    """
    return {"total": generated - sent, "after_end": generated - handed - late, "late": late, "given_up": given_up,
            "abandoned": max(0, handed - sent - given_up)}  # fmt: skip


def explain_unsent(s: dict[str, Any], not_sent: dict[str, int]) -> str:
    """The stderr line that says where the events ``generated`` but not ``sent`` went (:func:`unsent`).

    >>> explain_unsent({"generated": 10_500, "sent": 10_008, "accepted": 10_000, "rejected": 8, "duplicates": 0},
    ...                unsent(10_500, 10_008, 10_008, 0))  # doctest: +NORMALIZE_WHITESPACE
    'generated 10,500, sent 10,008 (accepted 10,000, rejected 8, duplicates 0); 492 not sent:
    492 generated ahead, due only after the run ended (so not part of it: nothing was lost)'
    """
    reasons = {
        "after_end": "generated ahead, due only after the run ended (so not part of it: nothing was lost)",
        "late": "due before --duration ran out, but the destination was behind schedule (see lag_s)",
        "given_up": "given up after the retries (see last_error)",
        "abandoned": "handed over but never answered (a second Ctrl-C, or the destination failed)",
    }
    parts = [f"{not_sent[k]:,} {why}" for k, why in reasons.items() if not_sent[k]]
    return (
        f"generated {s['generated']:,}, sent {s['sent']:,} (accepted {s['accepted']:,}, rejected "
        f"{s['rejected']:,}, duplicates {s['duplicates']:,}); {not_sent['total']:,} not sent: {'; '.join(parts)}"
    )
