"""How many streaming cycles the history keeps (``stream_keep_cycles``).

Every streaming update publishes ``cycle_<N>.mrc`` (a few MB at 128 px and 50 classes); the full
``cycle_<N>.star`` only every ``stream_star_minutes``. Left alone, a night of updates would fill
the history (and ``latest_run.json``) with thousands of cycles. The history keeps:

- every cycle that is not a streaming update (ab initio, seeded, refinement jobs);
- the newest ``keep`` streaming updates;
- the newest ``keep`` streaming updates that wrote a full star (what ``warp_to_cistem`` and the
  user need to go back to), so their number is bounded too.

:func:`cycles_to_forget` is pure; the supervisor removes the forgotten cycles' records and files
(issue 20, phase 2).
"""

from __future__ import annotations

from collections.abc import Iterable


def cycles_to_forget(streaming: Iterable[int], with_star: Iterable[int], keep: int) -> list[int]:
    """The streaming cycles (numbers) the history drops, oldest first.

    Args:
        streaming: Numbers of the streaming updates in the history.
        with_star: Those of them that wrote a full cycle star.
        keep: ``stream_keep_cycles`` (≥ 1).
    """
    if keep < 1:
        raise ValueError(f"keep must be ≥ 1 (got {keep})")
    numbers = sorted(set(streaming))
    starred = sorted(set(with_star) & set(numbers))
    kept = set(numbers[-keep:]) | set(starred[-keep:])
    return [n for n in numbers if n not in kept]
