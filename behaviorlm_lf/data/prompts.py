"""Render samples into the paper's prompt, from the Jinja files in ``behaviorlm_lf/templates/``.

Each sample draws one of the three instruction templates at random (seeded), in
training and in testing alike, so the model does not latch onto one format. The
renderer also returns where the sample's own text (its history and next event)
sits in the prompt: the B-Tuning embedding E(x) pools over exactly those tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import jinja2
import numpy as np

from .samples import DAYS

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
N_TEMPLATES = 3
# Markers the template is rendered with before the sample's parts are put in their place.
_SLOTS = {"history": "\x01", "next_event": "\x02", "candidates": "\x03"}
# A name holding a separator or a quote is quoted, so "Music, podcasts" stays one name.
_NEEDS_QUOTES = re.compile(r'[,()"]')


def draw_templates(n: int, seed: int) -> np.ndarray:
    """Index (0..2) of the instruction template of each of ``n`` samples."""
    return np.random.default_rng(seed).integers(0, N_TEMPLATES, size=n)


def quote_name(name: str) -> str:
    """A behavior or place name as the prompt shows it: quoted (JSON-style) when it holds , ( ) or "."""
    return json.dumps(name, ensure_ascii=False) if _NEEDS_QUOTES.search(name) else name


def format_event(dow: int, hour: int, place: str, behavior: str | None = None) -> str:
    """``(Mon,16,home,Exercise)``, or ``(Mon,16,home)`` for the next event, whose behavior is the answer."""
    parts = [DAYS[dow], str(int(hour)), quote_name(place)] + ([quote_name(behavior)] if behavior is not None else [])
    return "(" + ",".join(parts) + ")"


class PromptRenderer:
    """Renders the user message of a sample; the candidate set is fixed per data set."""

    def __init__(self, candidates: Sequence[str], template_dir: Path = TEMPLATE_DIR):
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(template_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self.templates = [env.get_template("prompt.j2").render(template=t, **_SLOTS).strip() for t in range(N_TEMPLATES)]
        self.candidates = ", ".join(quote_name(c) for c in candidates)

    def render(self, history: Sequence[str], dow: int, hour: int, place: str, template: int) -> tuple[str, list[list[int]]]:
        """The prompt, and the ``[start, end)`` character spans of the history and the next event in it.

        ``history`` holds events already formatted by :func:`format_event`.
        """
        parts = {"history": ", ".join(history), "next_event": format_event(dow, hour, place), "candidates": self.candidates}
        text, spans = "", []
        for piece in re.split("([\x01\x02\x03])", self.templates[template]):
            slot = next((name for name, marker in _SLOTS.items() if marker == piece), None)
            value = parts[slot] if slot else piece
            if slot in ("history", "next_event"):
                spans.append([len(text), len(text) + len(value)])
            text += value
        return text, spans

    def render_row(self, row) -> tuple[str, list[list[int]]]:
        """Render one row of :func:`behaviorlm_lf.data.samples.sample_frame` with its ``template``."""
        history = [
            format_event(d, h, p, b) for d, h, p, b in zip(row.hist_dow, row.hist_hour, row.hist_place, row.hist_behavior)
        ]
        return self.render(history, row.dow, row.hour, row.place, row.template)
