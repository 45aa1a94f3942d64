"""Render samples into the role-play prompt of the paper, from the Jinja files in ``templates/``.

Each sample draws one of the three instruction wordings at random (seeded), in
training and in testing alike, so the model does not latch onto one phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2
import numpy as np

from .samples import DAYS

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
WORDINGS = ("wording_1.j2", "wording_2.j2", "wording_3.j2")


def draw_wordings(n: int, seed: int) -> np.ndarray:
    """Index (0..2) of the instruction wording of each of ``n`` samples."""
    return np.random.default_rng(seed).integers(0, len(WORDINGS), size=n)


def format_event(dow: int, hour: int, place: str, behavior: str) -> str:
    return f"({DAYS[dow]},{hour},{place},{behavior})"


class PromptRenderer:
    """Renders the user message for a sample; the candidate set is fixed per data set."""

    def __init__(self, candidates: Sequence[str], template_dir: Path = TEMPLATE_DIR):
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(template_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self.template = env.get_template("prompt.j2")
        self.candidates = list(candidates)

    def render(self, history: Sequence[str], dow: int, hour: int, place: str, wording: int) -> str:
        """``history`` holds events already formatted by :func:`format_event`."""
        return self.template.render(
            wording=WORDINGS[wording],
            history=history,
            day=DAYS[dow],
            hour=int(hour),
            place=place,
            candidates=self.candidates,
        ).strip()

    def render_row(self, row) -> str:
        """Render one row of :func:`behaviorlm_lf.samples.sample_frame` with its ``wording``."""
        history = [
            format_event(d, h, p, b)
            for d, h, p, b in zip(row.hist_dow, row.hist_hour, row.hist_place, row.hist_behavior)
        ]
        return self.render(history, row.dow, row.hour, row.place, row.wording)
