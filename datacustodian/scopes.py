"""What a third party may be granted: never more than the scope it registered.

An ESPI scope is one structured value (``FB=1_3_4_5_13;IntervalDuration=900_3600;...``), not a
list of words, so "within" is decided part by part: the function blocks and interval durations
asked for are among the registered ones, the history is no longer, every other parameter that
both name has the registered value, and no unknown parameter is added.
"""

from __future__ import annotations

from espi import scope as espi_scope


def within(requested: str, registered: str) -> bool:
    try:
        asked, allowed = espi_scope.parse(requested), espi_scope.parse(registered)
    except espi_scope.ScopeError:
        return False

    def among(mine: tuple[int, ...], theirs: tuple[int, ...]) -> bool:
        return not theirs or set(mine) <= set(theirs)

    def same(mine: object, theirs: object) -> bool:
        return mine is None or theirs is None or mine == theirs

    return (
        set(asked.function_blocks) <= set(allowed.function_blocks)
        and among(asked.interval_durations, allowed.interval_durations)
        and (
            asked.history_length is None
            or allowed.history_length is None
            or asked.history_length <= allowed.history_length
        )
        and same(asked.block_duration, allowed.block_duration)
        and same(asked.subscription_frequency, allowed.subscription_frequency)
        and same(asked.account_collection, allowed.account_collection)
        and same(asked.bulk_id, allowed.bulk_id)
        and set(asked.extra) <= set(allowed.extra)
    )


def granted_blocks(granted: str, registered: str) -> frozenset[int]:
    """The function blocks an authorization shares: those of its scope that the third party's
    registration also names (an authorization stored wider than the registration gets no
    more than the registration)."""
    try:
        return frozenset(espi_scope.parse(granted).function_blocks) & frozenset(
            espi_scope.parse(registered).function_blocks
        )
    except espi_scope.ScopeError:
        return frozenset()
