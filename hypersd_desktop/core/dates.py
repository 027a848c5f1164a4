"""Times as people read them, for any time a file or a database row can hold."""

from __future__ import annotations

import datetime
import math
import time


def local_time(pattern: str, seconds: float) -> str:
    """`seconds` since 1970 as local time, written with `pattern` (`time.strftime`'s codes). A time the platform's
    clock refuses (any before 1970 on Windows, or past its range anywhere: a file with a damaged date) is counted
    from 1970 in UTC instead, and held to the years 1 to 9999."""
    try:
        return time.strftime(pattern, time.localtime(seconds))
    except (OSError, OverflowError, ValueError):
        pass
    try:
        moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        moment = datetime.datetime.max if not math.isnan(seconds) and seconds > 0 else datetime.datetime.min
    return moment.strftime(pattern)
