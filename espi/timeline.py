"""Gaps, overlaps and reading order of one series of readings: the one helper ``espi
summary``, ``espi lint`` and the app's freshness line share.

    t = Timeline()
    for r in readings:                      # in the order the file (or a query) gives them
        step = t.add(r.start, r.duration)   # a Step("gap" | "overlap", start, end) or None
    t.gaps, t.longest_gap, t.overlaps, t.order, t.order_note()

Readings may run in either direction: newest first is "reverse order" (worth knowing, not an
error); a file that mixes directions is "out of order".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """What a reading shows against the one listed before it: a ``gap`` (the hole between
    them) or an ``overlap`` (the time they share), from ``start`` to ``end`` (epoch s)."""

    kind: str
    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(slots=True)
class Timeline:
    """One series of readings, taken in the order given."""

    count: int = 0
    first: int | None = None  # the earliest start
    last_end: int | None = None  # the latest end
    gaps: int = 0
    longest_gap: Step | None = None
    overlaps: int = 0
    backwards: int = 0  # readings that end before the one listed ahead of them starts
    previous: tuple[int, int] | None = None  # the last reading's (start, end)

    def add(self, start: int, duration: int | None) -> Step | None:
        """Take the next reading; what it shows against the one before (None: they touch)."""
        end = start + (duration or 0)
        step = None
        if self.previous is not None:
            before_start, before_end = self.previous
            if end <= before_start and end < before_end:  # runs backwards in time
                self.backwards += 1
                step = Step("gap", end, before_start)
            elif start >= before_end:
                step = Step("gap", before_end, start)
            else:
                step = Step("overlap", max(start, before_start), min(end, before_end))
            if step.kind == "overlap":
                self.overlaps += 1
            elif step.seconds > 0:
                self.gaps += 1
                if self.longest_gap is None or step.seconds > self.longest_gap.seconds:
                    self.longest_gap = step
            else:
                step = None
        self.previous = (start, end)
        self.count += 1
        self.first = start if self.first is None else min(self.first, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)
        return step

    @property
    def order(self) -> str:
        """``forward``, ``reverse`` (newest first throughout) or ``mixed``."""
        if not self.backwards:
            return "forward"
        return "reverse" if self.backwards == self.count - 1 else "mixed"

    def order_note(self) -> str | None:
        """The one wording of reading order (None for oldest first)."""
        if self.order == "reverse":
            return "readings run newest first (reverse order)"
        if self.order == "mixed":
            return (
                f"{self.backwards} reading(s) come earlier than the one listed before them "
                "(out of order)"
            )
        return None
