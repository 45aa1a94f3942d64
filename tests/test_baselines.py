"""Baselines on toy sets with a known answer, on the smoke data, and through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from behaviorlm_lf.cli import main
from behaviorlm_lf.eval.baselines import make_baseline, read_events, read_set
from behaviorlm_lf.eval.metrics import PAPER_METRICS, compute_metrics, label_indexes
from behaviorlm_lf.eval.sequence_models import BERT4Rec, BERT4RecNetwork, SASRec, SASRecNetwork, user_windows
from behaviorlm_lf.extras.errors import BadInputError
from behaviorlm_lf.hparams import BaselineArguments
from behaviorlm_lf.hparams.eval_args import BASELINE_METHODS

LETTERS = [chr(ord("a") + i) for i in range(10)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The suite shares a 2-core machine; SASRec's small matrices gain nothing from more threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def toy_frame(histories, labels, hours=None, places=None) -> pd.DataFrame:
    """The sample columns baselines predict on, for hand-made samples."""
    n = len(labels)
    return pd.DataFrame(
        {
            "hist_behavior": [list(h) for h in histories],
            "dow": [0] * n,
            "hour": hours if hours is not None else [12] * n,
            "place": places if places is not None else ["home"] * n,
            "label": labels,
        }
    )


def toy_events(sequences, hours=None, places=None) -> pd.DataFrame:
    """Events of one toy user per sequence, in user and time order (what baselines fit on)."""
    behaviors = [b for sequence in sequences for b in sequence]
    n = len(behaviors)
    return pd.DataFrame(
        {
            "user": [f"u{i:03d}" for i, sequence in enumerate(sequences) for _ in sequence],
            "dow": [0] * n,
            "hour": hours if hours is not None else [12] * n,
            "place": places if places is not None else ["home"] * n,
            "behavior": behaviors,
        }
    )


def rule_sequences(n: int, length: int, step: int, rng: np.random.Generator, names=LETTERS) -> tuple[list, list]:
    """Sequences where each behavior is followed by the one ``step`` places later (cyclic): next = f(last)."""
    starts = rng.integers(len(names), size=n)
    codes = (starts[:, None] + step * np.arange(length + 1)[None, :]) % len(names)
    sequences = np.asarray(names, dtype=object)[codes]
    return [list(s[:-1]) for s in sequences], list(sequences[:, -1])


def test_popularity_on_a_skewed_set_finds_the_majority():
    labels = ["a"] * 90 + LETTERS[1:] + ["b"]  # 90% a, the rest spread over the other nine
    model = make_baseline("popularity", LETTERS).fit(toy_events([labels]))
    probs = model.predict_proba(toy_frame([["a"]] * len(labels), labels))
    behaviors = [{"name": n, "group": "anchor", "report_group": "head"} for n in LETTERS]
    result = compute_metrics(labels, probs, LETTERS, behaviors, balanced=False)
    assert result["rec_w"] == pytest.approx(0.9) and result["rec_w"] > 1 / len(LETTERS)
    assert probs[0, 0] == pytest.approx(91 / 110)  # add-one smoothing: (90 + 1) / (100 + 10)
    assert (probs > 0).all()


def test_context_backs_off_from_hour_place_to_place_to_popularity():
    labels = ["b", "b", "c", "c", "c", "a", "a", "a", "a", "a"]
    hours = [8, 8, 9, 9, 9, 20, 20, 20, 20, 20]
    places = ["work", "work", "work", "work", "work", "home", "home", "home", "home", "home"]
    model = make_baseline("context", LETTERS).fit(toy_events([labels], hours, places))
    test = toy_frame([["a"]] * 4, ["a"] * 4, hours=[8, 9, 23, 23], places=["work", "work", "work", "park"])
    predicted = [LETTERS[i] for i in model.predict_proba(test).argmax(axis=1)]
    # seen (8, work) -> b although c is more frequent at work; unseen (23, work) -> work's c; unseen park -> a
    assert predicted == ["b", "c", "c", "a"]
    assert model.predict_proba(test).sum(axis=1) == pytest.approx(np.ones(4))


def test_markov_learns_a_deterministic_transition_perfectly():
    rng = np.random.default_rng(0)
    histories, labels = rule_sequences(60, 5, 3, rng)
    model = make_baseline("markov", LETTERS).fit(toy_events([h + [y] for h, y in zip(histories, labels)]))
    histories, labels = rule_sequences(40, 5, 3, rng)
    probs = model.predict_proba(toy_frame(histories, labels))
    assert [LETTERS[i] for i in probs.argmax(axis=1)] == labels


def test_markov_counts_transitions_within_users_and_backs_off_for_an_unseen_state():
    candidates = LETTERS[:3]
    train = toy_events([["a", "b", "a"], ["a", "b", "a"], ["b", "a", "b"]])
    model = make_baseline("markov", candidates).fit(train)
    probs = model.predict_proba(toy_frame([["a", "c"], ["a", "b"]], ["a", "a"]))
    assert probs[0] == pytest.approx(make_baseline("popularity", candidates).fit(train).probs_)
    # state b is followed by a three times, by nothing else; the pair (a of user 0, a of user 1) is no transition
    assert probs[1] == pytest.approx(np.array([1 + 3, 1, 1]) / (3 + 3))


def test_user_windows_overlap_by_one_so_every_transition_is_a_target_once():
    events = toy_events([list("abcdefg"), list("hi")])
    windows = user_windows(events, label_indexes(events["behavior"], LETTERS), length=4, pad=10)
    assert windows.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [10, 10, 7, 8]]


@pytest.mark.parametrize("model_class", [SASRec, BERT4Rec])
def test_sequence_models_learn_next_equals_f_of_last(model_class):
    rng = np.random.default_rng(1)
    train, valid = (toy_events([h + [y] for h, y in zip(*rule_sequences(n, 8, 3, rng))]) for n in (300, 50))
    test = toy_frame(*rule_sequences(100, 8, 3, rng))
    model = model_class(LETTERS, epochs=100, patience=20, seed=0, history_len=8).fit(train, valid)
    accuracy = (model.predict_proba(test).argmax(axis=1) == [LETTERS.index(y) for y in test["label"]]).mean()
    assert accuracy > 0.9, model.fit_info_
    assert model.fit_info_["valid_accuracy"] > 0.9


def test_sasrec_attention_is_causal():
    network = SASRecNetwork(n_items=10, max_len=6, hidden=16, blocks=2, heads=1, dropout=0.2).eval()
    items = torch.tensor([[1, 2, 3, 4, 5, 6]])
    changed = items.clone()
    changed[0, 4:] = torch.tensor([0, 9])
    with torch.no_grad():
        before, after = network(items), network(changed)
    assert torch.equal(before[:, :4], after[:, :4])  # positions 0-3 never see positions 4 and 5
    assert not torch.allclose(before[:, 4:], after[:, 4:])


@pytest.mark.parametrize("model_class", [SASRec, BERT4Rec])
def test_sequence_models_are_seeded(model_class):
    rng = np.random.default_rng(2)
    histories, labels = rule_sequences(64, 6, 1, rng)
    train = toy_events([h + [y] for h, y in zip(histories, labels)])
    first, second = (
        model_class(LETTERS, epochs=2, seed=7, history_len=6).fit(train).predict_proba(toy_frame(histories, labels))
        for _ in range(2)
    )
    assert np.array_equal(first, second)


def test_bert4rec_attends_both_ways():
    network = BERT4RecNetwork(n_items=10, max_len=6, hidden=16, blocks=2, heads=2, dropout=0.0).eval()
    items = torch.tensor([[1, 2, 3, 4, 5, 11]])  # 11 = [mask]
    changed = items.clone()
    changed[0, 4] = 9
    with torch.no_grad():
        assert not torch.allclose(network(items)[:, :4], network(changed)[:, :4])  # earlier positions see later ones


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_every_baseline_scores_the_smoke_data(smoke, method):
    layout = smoke.layout()
    candidates = json.loads(layout.behaviors_file.read_text())["candidates"]
    train, valid = (read_events(layout.set_file(f"{split}_events", ".parquet"), candidates) for split in ("train", "valid"))
    test = read_set(layout.set_file("test_balanced", ".parquet"), candidates)
    model = make_baseline(method, candidates, epochs=3).fit(train, valid)
    probs = model.predict_proba(test)
    assert probs.shape == (len(test), len(candidates))
    assert np.isfinite(probs).all() and (probs >= 0).all()
    assert probs.sum(axis=1) == pytest.approx(np.ones(len(test)))


@pytest.mark.parametrize("method", ["popularity", "sasrec", "bert4rec"])
def test_cli_writes_the_six_paper_metrics(smoke, method):
    main(["baseline", "--dataset", "default", "--preset", "smoke", "--root", str(smoke.root), "--method", method, "--epochs", "2"])
    metrics = json.loads((smoke.layout().report_dir(method) / "metrics.json").read_text())
    assert metrics["method"] == method
    for key in PAPER_METRICS:
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    assert metrics["prec_w"] is not None and metrics["overall"] is not None
    # the baseline fit on the whole training split, more events than the LLM's capped training samples
    assert metrics["extra"]["train_events"] > metrics["extra"]["llm_train_samples"] > 0 and metrics["extra"]["seed"] == 0


def test_a_fitted_baseline_is_reused_until_its_data_or_settings_change(smoke, monkeypatch):
    """report and benchmark refit every baseline on each run unless the baseline is a cached stage."""
    from behaviorlm_lf.eval import baselines

    first = baselines.run_baseline(smoke, BaselineArguments(method="markov"))
    fitted = (first / "metrics.json").read_text()

    def no_refit(*args, **kwargs):
        raise AssertionError("refit although nothing changed")

    monkeypatch.setattr(baselines, "make_baseline", no_refit)
    assert (baselines.run_baseline(smoke, BaselineArguments(method="markov")) / "metrics.json").read_text() == fitted
    with pytest.raises(AssertionError, match="refit"):  # other settings are another fit
        baselines.run_baseline(smoke, BaselineArguments(method="markov", epochs=3))
    assert (first / "metrics.json").read_text() == fitted  # and the failed rebuild left the finished report alone


def test_a_simple_context_model_beats_popularity_on_the_tail_of_the_embedded_data(tmp_path, tiny_model):
    """The simulator's rare behaviors have triggers a sample shows: context alone already finds some."""
    from conftest import convert_smoke, smoke_run

    from behaviorlm_lf.eval.baselines import run_baseline

    run = smoke_run(tmp_path, tiny_model)
    convert_smoke(run, sim_users=300, sim_days=28, balanced_per_class=20)
    scores = {
        method: json.loads((run_baseline(run, BaselineArguments(method=method)) / "metrics.json").read_text())
        for method in ("popularity", "context")
    }
    assert scores["popularity"]["tail"] == 0.0
    assert scores["context"]["tail_lo"] > 0.1  # above popularity beyond the interval


def test_read_set_names_an_unknown_behavior(tmp_path):
    path = tmp_path / "set.parquet"
    toy_frame([["a", "b"], ["a", "zebra"]], ["a", "b"]).to_parquet(path)
    with pytest.raises(BadInputError, match="row 2, field 'hist_behavior'.*zebra"):
        read_set(path, LETTERS)
