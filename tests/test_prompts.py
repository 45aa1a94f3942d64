"""The Jinja prompt: the three wordings, the history format, the full candidate set."""

from __future__ import annotations

import numpy as np

from behaviorlm_lf.prompts import TEMPLATE_DIR, WORDINGS, PromptRenderer, draw_wordings, format_event

CANDIDATES = ["Exercise", "Music", "Short video", "Taxi"]


def test_history_is_rendered_like_the_paper():
    assert format_event(0, 16, "home", "Exercise") == "(Mon,16,home,Exercise)"


def test_prompt_holds_history_context_and_every_candidate():
    renderer = PromptRenderer(CANDIDATES)
    history = [format_event(0, 16, "home", "Exercise"), format_event(0, 18, "commute", "Music")]
    text = renderer.render(history, dow=1, hour=8, place="commute", wording=0)
    assert "(Mon,16,home,Exercise), (Mon,18,commute,Music)" in text
    assert "Tue" in text and "hour 8" in text and "commute" in text
    assert "Candidate behaviors: Exercise, Music, Short video, Taxi." in text
    assert (TEMPLATE_DIR / WORDINGS[0]).read_text().strip() in text


def test_all_three_wordings_are_drawn_and_rendered_differently():
    drawn = draw_wordings(300, seed=0)
    assert set(drawn.tolist()) == {0, 1, 2}
    assert np.array_equal(drawn, draw_wordings(300, seed=0))
    renderer = PromptRenderer(CANDIDATES)
    texts = {renderer.render(["(Mon,1,home,Taxi)"], 0, 1, "home", w) for w in range(3)}
    assert len(texts) == 3
