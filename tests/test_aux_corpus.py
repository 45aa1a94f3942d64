from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviorlm_lf.data.aux_corpus import BUILTIN_CORPUS, CorpusTooSmallError, load_corpus, select_aux
from behaviorlm_lf.extras.errors import BadInputError

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "aux" / "alpaca_en_demo.json"


def words(text: str) -> int:
    return len(text.split())


# One two-exchange conversation, written in every supported layout.
EXPECTED = [
    {"instruction": "Name a colour.", "input": "", "output": "Blue.", "history": []},
    {
        "instruction": "And in French?",
        "input": "",
        "output": "Bleu.",
        "history": [["What is 2 + 2?", "4."]],
    },
]
ALPACA = [
    {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    {"instruction": "And in French?", "output": "Bleu.", "system": "Be brief.", "history": [["What is 2 + 2?", "4."]]},
]
SHAREGPT = [
    {"conversations": [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Blue."}]},
    {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "What is 2 + 2?"},
            {"from": "gpt", "value": "4."},
            {"from": "human", "value": "And in French?"},
            {"from": "gpt", "value": "Bleu."},
        ]
    },
]
OPENAI = [
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "4."},
            {"role": "user", "content": "And in French?"},
            {"role": "assistant", "content": "Bleu."},
        ]
    },
]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_builtin_corpus_loads():
    assert load_corpus(None) == load_corpus(BUILTIN_CORPUS)
    records = load_corpus(None)
    assert len(records) >= 100
    for record in records:
        assert set(record) == {"instruction", "input", "output", "history"}
        assert record["instruction"].strip() and record["output"].strip()
        assert record["history"] == []
        assert words(record["instruction"] + " " + record["input"] + " " + record["output"]) <= 120
    assert len({(r["instruction"], r["input"]) for r in records}) == len(records)


@pytest.mark.parametrize(
    "name, text",
    [
        ("alpaca.json", json.dumps(ALPACA, indent=2)),
        ("alpaca.jsonl", "\n".join(json.dumps(row) for row in ALPACA) + "\n"),
        ("sharegpt.json", json.dumps(SHAREGPT)),
        ("sharegpt.jsonl", "\n\n".join(json.dumps(row) for row in SHAREGPT)),
        ("messages.json", json.dumps(OPENAI)),
    ],
)
def test_formats_normalise_to_the_same_records(tmp_path, name, text):
    assert load_corpus(write(tmp_path, name, text)) == EXPECTED


def test_single_line_json_lines(tmp_path):
    path = write(tmp_path, "one.jsonl", json.dumps(ALPACA[0]) + "\n")
    assert load_corpus(path) == EXPECTED[:1]


def test_shared_demo_corpus_loads():
    if not DEMO_CORPUS.exists():
        pytest.skip("../shared/data/aux not present (fresh clone)")
    records = load_corpus(DEMO_CORPUS)
    assert len(records) == 999
    assert all(record["history"] == [] for record in records)


@pytest.mark.parametrize(
    "text, where, message",
    [
        (b"\xff\xfe[]", "", "not UTF-8"),
        ('[{"instruction": "a", "output": "b",}]', "", "invalid JSON"),
        ('{"instruction": "a", "output": "b"}\n{"instruction": "a" "output": "b"}\n', ", row 2", "invalid JSON"),
        ("", "", "empty"),
        ("  \n\n", "", "empty"),
        ("[]", "", "no records"),
        (
            '[{"instruction": "a", "output": "b"}, {"input": "x", "output": "b"}]',
            ", row 2, field 'instruction'",
            "missing",
        ),
        ('[{"instruction": "a", "output": ""}]', ", row 1, field 'output'", "missing"),
        ('[{"instruction": "a", "output": 3}]', ", row 1, field 'output'", "expected a string, got number"),
        ('[{"instruction": "a", "output": "b", "history": [["q"]]}]', ", row 1, field 'history'", "pairs"),
        ('[{"instruction": "a", "output": "b"}, "hello"]', ", row 2", "expected a JSON object, got string"),
        (
            '[{"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "yo"}]}]',
            ", row 1, field 'conversations[1].from'",
            "unknown role 'bot'",
        ),
        (
            '[{"messages": [{"role": ["user"], "content": "hi"}]}]',
            ", row 1, field 'messages[0].role'",
            "unknown role ['user']",
        ),
        (
            '[{"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}]}]',
            ", row 1, field 'messages[1].role'",
            "got 'system'",
        ),
        (
            '[{"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "yo"}]}]',
            ", row 1, field 'messages[1].role'",
            "out of order",
        ),
        ('[{"messages": [{"role": "user", "content": "hi"}]}]', ", row 1, field 'messages'", "ends with a user turn"),
        ('[{"conversations": []}]', ", row 1, field 'conversations'", "non-empty list"),
    ],
)
def test_bad_input_names_file_row_and_field(tmp_path, text, where, message):
    path = write(tmp_path, "bad.json", text)
    with pytest.raises(BadInputError) as caught:
        load_corpus(path)
    assert str(caught.value).startswith(f"{path}{where}: ")
    assert message in str(caught.value)


def test_missing_file_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="cannot read"):
        load_corpus(tmp_path / "absent.json")


def make_records(n: int) -> list[dict]:
    return [{"instruction": f"question {i}", "input": "", "output": "short answer", "history": []} for i in range(n)]


def test_select_epsilon_zero_selects_nothing():
    selected, stats = select_aux(make_records(10), n_anchor=100, epsilon=0, max_tokens=50, count_tokens=words, seed=0)
    assert selected == []
    assert stats == {"available": 10, "filtered_too_long": 0, "requested": 0, "selected": 0, "epsilon": 0, "achieved_epsilon": 0.0}


def test_select_draws_round_epsilon_times_anchors():
    records = make_records(50)
    selected, stats = select_aux(records, n_anchor=230, epsilon=0.05, max_tokens=50, count_tokens=words, seed=1)
    assert len(selected) == stats["selected"] == stats["requested"] == round(0.05 * 230) == 12
    assert len({r["instruction"] for r in selected}) == 12
    assert all(r in records for r in selected)


def test_select_filters_long_records_including_history():
    records = make_records(5)
    records.append({"instruction": "tell a story", "input": "", "output": "word " * 200, "history": []})
    records.append({"instruction": "q", "input": "", "output": "a", "history": [["long " * 60, "longer " * 60]]})
    selected, stats = select_aux(records, n_anchor=5, epsilon=1.0, max_tokens=50, count_tokens=words, seed=0)
    assert stats == {"available": 5, "filtered_too_long": 2, "requested": 5, "selected": 5, "epsilon": 1.0, "achieved_epsilon": 1.0}
    assert sorted(r["instruction"] for r in selected) == [f"question {i}" for i in range(5)]


def test_select_is_deterministic_for_a_seed():
    records = make_records(100)
    kwargs = {"n_anchor": 200, "epsilon": 0.1, "max_tokens": 50, "count_tokens": words}
    first, _ = select_aux(records, seed=7, **kwargs)
    again, _ = select_aux(records, seed=7, **kwargs)
    other, _ = select_aux(records, seed=8, **kwargs)
    assert first == again
    assert first != other


def test_a_corpus_too_small_for_epsilon_is_an_error_naming_the_sizes():
    """The paper's scale (200k samples, epsilon 5%) needs 10k conversations; silently taking 120 is not epsilon 5%."""
    with pytest.raises(CorpusTooSmallError, match=r"my_corpus.json: 3 of its 3 conversations .* needs 50"):
        select_aux(make_records(3), n_anchor=100, epsilon=0.5, max_tokens=50, count_tokens=words, seed=0, corpus="my_corpus.json")


def test_a_smaller_ratio_allowed_explicitly_takes_all_and_records_the_achieved_epsilon(caplog):
    selected, stats = select_aux(
        make_records(3), n_anchor=100, epsilon=0.5, max_tokens=50, count_tokens=words, seed=0, allow_smaller=True
    )
    assert len(selected) == 3
    assert stats["requested"] == 50 and stats["selected"] == 3 and stats["achieved_epsilon"] == pytest.approx(0.03)
    assert "50 were requested" in caplog.text


def test_the_builtin_corpus_reaches_epsilon_for_the_cpu_preset():
    """The embedded default trains at most 2,000 anchor samples (the learning curve's largest): 100 conversations."""
    records = load_corpus(None)
    selected, stats = select_aux(records, n_anchor=2000, epsilon=0.05, max_tokens=400, count_tokens=words, seed=0)
    assert stats["achieved_epsilon"] == pytest.approx(0.05)


@pytest.mark.parametrize("epsilon", [-0.01, 1.5, float("nan")])
def test_select_rejects_epsilon_out_of_range(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        select_aux(make_records(3), n_anchor=10, epsilon=epsilon, max_tokens=50, count_tokens=words, seed=0)
