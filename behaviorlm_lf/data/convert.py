"""The ``data`` stage: turn an event log into LlamaFactory data sets and register them.

    behaviorlm data                                     # embedded simulator -> data/default/
    behaviorlm data --dataset foursquare-nyc
    behaviorlm data --dataset mine --source my_log.csv --columns user=uid,time=ts,place=loc,behavior=app

Writes, under ``data/<data name>/``, one alpaca JSON-lines file per set (what
``llamafactory-cli`` trains and evaluates on), the same samples as Parquet with
their structure (for baselines and metrics), the training and validation users'
events (for the baselines), ``behaviors.json`` (vocabulary, training frequencies,
anchor/tail and head/medium/tail groups, counts) and a manifest; and registers
every set in LlamaFactory's registry ``dataset_info.json`` (at the root).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..extras.cache import run_stage
from ..extras.errors import BadInputError, UserError
from ..extras.fileio import write_json
from ..extras.layout import RunLayout, check_model_folder
from ..hparams import DataArguments, RunArguments
from ..hparams.presets import preset_overlay
from ..lf.registry import entry, register
from .lengths import SamplesTooLongError, check_candidate_list, check_sample_lengths, training_cutoff
from .prompts import TEMPLATE_DIR, PromptRenderer, draw_templates
from .readers import read_foursquare, read_placelab, read_table
from .samples import SETS, SampleConfig, SampleSets, build_sample_sets, sample_frame

logger = logging.getLogger(__name__)

CHUNK = 20_000
# Named sources, where they live under the shared data folder, and the settings that suit them.
KNOWN_SOURCES = {
    "foursquare-nyc": {"file": "foursquare-nyc/checkins_nyc.csv.gz", "top_k": 50},
    "mit-placelab": {"file": "mit-placelab/mit_placelab_activities.csv", "split_by": "time"},
}
SIMULATED = "default"


def shared_data(root: Path) -> Path:
    """The shared data folder: ``BEHAVIORLM_SHARED_DATA``, else ``../shared/data`` beside the root folder."""
    return Path(os.environ.get("BEHAVIORLM_SHARED_DATA", Path(root).resolve().parent / "shared" / "data"))


def source_of(run: RunArguments, data: DataArguments) -> str:
    return data.source or run.dataset


def load_events(source: str, data: DataArguments, root: Path, seed: int):
    """Events of the simulator, a named source or a user's file, and the file (if any) they came from."""
    if source == SIMULATED:
        from .simulator import simulate_events

        return simulate_events(n_users=data.sim_users, days=data.sim_days, seed=seed), None
    grid = None if data.grid_deg.lower() == "none" else float(data.grid_deg)
    if source in KNOWN_SOURCES:
        path = shared_data(root) / KNOWN_SOURCES[source]["file"]
        if not path.is_file():
            raise UserError(
                f"{path} not found: the {source} data lives in the shared data folder "
                "(../shared/data beside the project, or set BEHAVIORLM_SHARED_DATA)"
            )
        return (read_foursquare(path, grid_deg=grid) if source == "foursquare-nyc" else read_placelab(path)), path
    path = check_file_source(source)
    mapping = {"user": "user", "time": "time", "place": "place", "behavior": "behavior", "tz_offset": None}
    mapping |= parse_columns(data.columns)
    events = read_table(
        path, user=mapping["user"], time_col=mapping["time"], place=mapping["place"] or None,
        behavior=mapping["behavior"], tz_offset_min=mapping["tz_offset"], time_format=data.time_format, time_unit=data.time_unit,
        assume=data.assume,
    )
    return events, path


def check_file_source(source: str) -> Path:
    """A user's event file; a name that is neither a known source nor a file is an unknown source."""
    path = Path(source)
    if not path.exists() and not path.suffix:
        raise UserError(f"unknown source {source!r}: choose {SIMULATED}, one of {sorted(KNOWN_SOURCES)}, or a CSV/Parquet file")
    if path.is_dir():
        raise BadInputError(path, "is a folder, not an event file")
    if not path.is_file():
        raise BadInputError(path, "no such file")
    return path


def parse_columns(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = [item.split("=", 1) for item in text.split(",")]
    allowed = {"user", "time", "place", "behavior", "tz_offset"}
    bad = [p[0] for p in pairs if len(p) != 2 or p[0] not in allowed]
    if bad:
        raise UserError(f"--columns takes KEY=COLUMN pairs with KEY in {sorted(allowed)}; got {bad}")
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise UserError(f"--columns names {twice[0]} twice")
    empty = [key for key, column in pairs if not column.strip() and key != "place"]
    if empty:
        raise UserError(f"--columns {empty[0]}= names no column (only place= may be empty: a log without places)")
    columns = [column for _, column in pairs if column]
    shared = sorted({column for column in columns if columns.count(column) > 1})
    if shared:
        raise UserError(f"--columns gives column {shared[0]!r} to two keys")
    return dict(pairs)


def sample_config(source: str, data: DataArguments, seed: int) -> SampleConfig:
    """The sample settings: the data arguments, with the named source's own defaults where none was given."""
    known = KNOWN_SOURCES.get(source, {})
    return SampleConfig(
        history_len=data.history_len, anchor_threshold=data.anchor_threshold,
        top_k=data.top_k if data.top_k is not None else known.get("top_k"), min_count=data.min_count,
        split_by=data.split_by or known.get("split_by", "user"), seed=seed, max_train=data.max_train,
        max_valid=data.max_valid, max_natural_test=data.max_natural_test,
        balanced_per_class=data.balanced_per_class, pool_per_class=data.pool_per_class, valid_per_class=data.valid_per_class,
    )


def write_sets(sets: SampleSets, config: SampleConfig, out_dir: Path) -> dict:
    """Render every set to alpaca JSON lines and structured Parquet, in bounded chunks."""
    candidates = sorted(sets.events.behaviors)
    renderer = PromptRenderer(candidates)
    for set_index, name in enumerate(SETS):
        targets = sets.sets[name]
        templates = draw_templates(len(targets), seed=config.seed * 100 + set_index)
        writer = None
        with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as jsonl:
            for start in tqdm(range(0, len(targets), CHUNK), desc=f"render {name}", unit="chunk", disable=len(targets) < CHUNK):
                frame = sample_frame(sets.events, targets[start : start + CHUNK], config.history_len)
                frame.insert(0, "sample_id", [f"{name}-{i}" for i in range(start, start + len(frame))])
                frame["template"] = templates[start : start + len(frame)]
                frame["prompt"], frame["sample_spans"] = zip(*(renderer.render_row(row) for row in frame.itertuples(index=False)))
                jsonl.writelines(
                    json.dumps({"instruction": p, "input": "", "output": y}, ensure_ascii=False) + "\n"
                    for p, y in zip(frame["prompt"], frame["label"])
                )
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out_dir / f"{name}.parquet", table.schema)
                writer.write_table(table)
        if writer is None:
            pq.write_table(pa.Table.from_pandas(sample_frame(sets.events, targets, config.history_len)), out_dir / f"{name}.parquet")
        else:
            writer.close()
        logger.info("wrote %s: %d samples", out_dir / f"{name}.jsonl", len(targets))
    for split in ("train", "valid"):  # the whole splits, which the baselines fit and stop early on
        pq.write_table(pa.Table.from_pandas(sets.split_events(split), preserve_index=False), out_dir / f"{split}_events.parquet")
    vocabulary = {
        "candidates": candidates,
        "anchor_threshold": config.anchor_threshold,
        "history_len": config.history_len,
        "behaviors": sets.behavior_table.to_dict(orient="records"),
        "stats": sets.stats,
    }
    write_json(out_dir / "behaviors.json", json.loads(json.dumps(vocabulary, default=_to_builtin)))
    return sets.stats


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value)}")


def convert(run: RunArguments, data: DataArguments) -> Path:
    """Convert the run's source with ``data``'s settings into the run's data folder (cached); returns it."""
    layout: RunLayout = run.layout()
    source = source_of(run, data)
    config = sample_config(source, data, run.seed)
    inputs = {"templates": TEMPLATE_DIR}
    parse_columns(data.columns)  # checked before anything runs
    if data.columns and source in (SIMULATED, *KNOWN_SOURCES):
        raise UserError(f"--columns {data.columns!r} maps the columns of an event file (--source); {source} has its own reader")
    if source not in (SIMULATED, *KNOWN_SOURCES):
        inputs["events"] = check_file_source(source)
    elif source in KNOWN_SOURCES:
        inputs["events"] = shared_data(run.root) / KNOWN_SOURCES[source]["file"]
        if not inputs["events"].is_file():
            raise UserError(f"{source}: its events file {inputs['events']} is not there; the shared data folder is "
                            "../shared/data beside the root folder, or BEHAVIORLM_SHARED_DATA=<folder>")
    stage_config = {"source": source, "columns": data.columns, "grid_deg": data.grid_deg, "time_unit": data.time_unit,
                    "time_format": data.time_format, "assume": data.assume, "sample": asdict(config)}
    if source == SIMULATED:
        stage_config["simulator"] = {"users": data.sim_users, "days": data.sim_days}
    cutoff = data.max_prompt_tokens or training_cutoff(preset_overlay(run.preset, "a_tune").get("cutoff_len"))
    model = run.layout().model_path() if run.model is not None else None
    tokenizer = str(check_model_folder(model)) if model is not None and model.is_dir() else None
    stage_config["lengths"] = {"cutoff_len": cutoff, "tokenizer": Path(tokenizer).name if tokenizer else None,
                               "cut_history": data.cut_history}

    def build(tmp: Path) -> dict:
        events, path = load_events(source, data, run.root, run.seed)
        stats = write_fitting_sets(events, str(path or source), config, tmp)
        # registered before the folder is renamed into place: a registry that cannot be written leaves nothing
        register({layout.set_registry_name(s): entry(layout.set_file(s), layout.registry) for s in SETS}, layout.registry)
        return stats

    def write_fitting_sets(events, where: str, fitted: SampleConfig, tmp: Path) -> dict:
        """The sets, their samples checked against the cutoff; with --cut-history, L shortened until they fit."""
        while True:
            sets = build_sample_sets(events, fitted, source=where)
            if tokenizer is not None:
                check_candidate_list(sorted(sets.events.behaviors), tokenizer, cutoff)
            stats = write_sets(sets, fitted, tmp)
            if tokenizer is None:
                logger.warning("no model folder yet (%s): sample lengths not checked against the cutoff of %d tokens", model, cutoff)
                return stats
            try:
                lengths = check_sample_lengths(tmp, SETS, tokenizer, cutoff, layout.data_dir)
            except SamplesTooLongError as err:
                if not data.cut_history or fitted.history_len == 1:
                    raise
                # tokens grow about linearly with L: aim at the length that fits, at least one event shorter
                shorter = max(1, min(fitted.history_len - 1, int(fitted.history_len * cutoff / err.longest)))
                logger.info("samples up to %d tokens at L=%d: cutting the history to L=%d", err.longest, fitted.history_len, shorter)
                fitted = replace(fitted, history_len=shorter)
                continue
            if fitted.history_len != config.history_len:
                logger.warning("history cut from L=%d to L=%d to fit %d tokens (--cut-history)", config.history_len, fitted.history_len, cutoff)
                lengths["history_len_cut_from"] = config.history_len
            return stats | {"lengths": lengths | {"history_len": fitted.history_len}}

    run_stage(f"data:{layout.data_name}", layout.data_dir, inputs, stage_config, build, code=__name__)
    register({layout.set_registry_name(s): entry(layout.set_file(s), layout.registry) for s in SETS}, layout.registry)
    return layout.data_dir


