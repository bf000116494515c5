"""The progress bar shared by the ledger's trust tools."""

from __future__ import annotations

import sys

from tqdm import tqdm

# Above this many items a run takes long enough that a bar is worth it even in a log file.
MANY = 10_000


def progress_bar(*, total: int, unit: str, desc: str, enabled: bool | None = None) -> tqdm:
    """A tqdm bar on stderr, shown when stderr is a terminal or when the job is big; `enabled` forces it."""
    show = (sys.stderr.isatty() or total >= MANY) if enabled is None else enabled
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show, dynamic_ncols=True)
