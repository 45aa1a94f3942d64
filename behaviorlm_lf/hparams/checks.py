"""The checks every settings class runs in ``__post_init__``: one line naming the flag, its value and what is allowed."""

from __future__ import annotations

import math
import re

from ..extras.errors import UserError

# A name that becomes a folder under data/, saves/ or reports/: no separator, no "..", nothing absolute, so that no
# command writes, or replaces, anything outside its root.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_range(settings, low: float | None = None, high: float | None = None, **fields) -> None:
    """Each of ``fields`` (flag name -> minimum) at least its minimum, or ``low``..``high``; None passes (unset)."""
    for name, minimum in fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        floor = low if minimum is None else minimum
        if value != value:  # NaN passes every comparison
            raise UserError(f"--{name} {value}: not a number")
        if (floor is not None and value < floor) or (high is not None and value > high):
            allowed = f"from {floor} to {high}" if high is not None else f"at least {floor}"
            raise UserError(f"--{name} {value}: must be {allowed}")


def check_positive(settings, *names: str) -> None:
    """Each of ``names`` above 0 where it is set."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and not 0 < value < math.inf:
            raise UserError(f"--{name} {value}: must be a finite number above 0")


def check_plain_name(flag: str, value: str) -> str:
    if not PLAIN_NAME.fullmatch(value) or ".." in value:
        raise UserError(f"{flag} {value!r} is not a plain folder name (letters, digits, '.', '_', '-'; no '/' or '..')")
    return value
