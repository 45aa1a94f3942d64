"""The Jinja prompt: three whole instruction templates, the history format, the candidate set, the sample's spans."""

from __future__ import annotations

import numpy as np

from behaviorlm_lf.data.prompts import TEMPLATE_DIR, PromptRenderer, draw_templates, format_event

CANDIDATES = ["Exercise", "Music", "Short video", "Taxi"]
HISTORY = [format_event(0, 16, "home", "Exercise"), format_event(0, 18, "commute", "Music")]


def test_history_is_rendered_like_the_paper():
    assert format_event(0, 16, "home", "Exercise") == "(Mon,16,home,Exercise)"
    assert format_event(1, 8, "commute") == "(Tue,8,commute)"


def test_every_template_opens_with_the_role_play_and_holds_history_context_and_candidates():
    role_play = (TEMPLATE_DIR / "role_play.j2").read_text().strip()
    renderer = PromptRenderer(CANDIDATES)
    for template in range(3):
        text, _ = renderer.render(HISTORY, dow=1, hour=8, place="commute", template=template)
        assert text.startswith(role_play)
        assert "(Mon,16,home,Exercise), (Mon,18,commute,Music)" in text
        assert "(Tue,8,commute)" in text
        assert "Exercise, Music, Short video, Taxi" in text


def test_the_three_templates_differ_beyond_the_opening_sentence():
    """Section 4.1.4: whole templates differ in how history, next event, candidates and answer are introduced."""
    renderer = PromptRenderer(CANDIDATES)
    texts = [renderer.render(HISTORY, 1, 8, "commute", t)[0] for t in range(3)]
    role_play = (TEMPLATE_DIR / "role_play.j2").read_text().strip()
    bodies = [text[len(role_play) :].splitlines() for text in texts]
    for line in range(3):  # the history, next-event and candidate lines are each worded differently
        assert len({body[line + 1] for body in bodies}) == 3


def test_all_three_templates_are_drawn_and_seeded():
    drawn = draw_templates(300, seed=0)
    assert set(drawn.tolist()) == {0, 1, 2}
    assert np.array_equal(drawn, draw_templates(300, seed=0))


def test_spans_are_exactly_the_history_and_the_next_event():
    renderer = PromptRenderer(CANDIDATES)
    for template in range(3):
        text, spans = renderer.render(HISTORY, 1, 8, "commute", template)
        assert [text[a:b] for a, b in spans] == [", ".join(HISTORY), "(Tue,8,commute)"]


def test_names_with_commas_or_parentheses_stay_one_name():
    renderer = PromptRenderer(["Music, podcasts", "Home (private)", "Taxi"])
    text, _ = renderer.render([format_event(0, 9, "home", "Music, podcasts")], 0, 10, "home", 0)
    assert '"Music, podcasts", "Home (private)", Taxi' in text
    assert '(Mon,9,home,"Music, podcasts")' in text
