"""Turn an event log into LlamaFactory datasets and register them in ``dataset_info.json``.

    python -m behaviorlm_lf.convert                       # embedded simulator -> data/default/
    python -m behaviorlm_lf.convert --source foursquare-nyc
    python -m behaviorlm_lf.convert --source my_log.csv --name mine \
        --columns user=uid,time=ts,place=loc,behavior=app

Writes, under ``data/<name>/``, one alpaca JSON-lines file per set (what
``llamafactory-cli`` trains and evaluates on), the same samples as Parquet with
their structure (for baselines and metrics), ``behaviors.json`` (vocabulary,
training frequencies, anchor/tail and head/medium/tail groups) and a manifest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from .cache import code_files, run_stage
from .fileio import atomic_output, write_json
from .presets import get_preset
from .prompts import TEMPLATE_DIR, PromptRenderer, draw_templates
from .readers import read_foursquare, read_placelab, read_table
from .samples import SETS, SampleConfig, SampleSets, build_sample_sets, sample_frame

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_INFO = REPO_ROOT / "dataset_info.json"
SHARED_DATA = Path(os.environ.get("BEHAVIORLM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
CHUNK = 20_000

# Named sources and the settings that suit them; a user file takes --columns.
KNOWN_SOURCES = {
    "foursquare-nyc": {"file": "foursquare-nyc/checkins_nyc.csv.gz", "top_k": 50},
    "mit-placelab": {"file": "mit-placelab/mit_placelab_activities.csv", "split_by": "time"},
}


def load_events(source: str, columns: dict[str, str], grid_deg: float | None, sim_users: int, sim_days: int, seed: int):
    """Events of a named source or a user's file, and the file (if any) they came from."""
    if source == "default":
        from .simulator import simulate_events

        return simulate_events(n_users=sim_users, days=sim_days, seed=seed), None
    if source in KNOWN_SOURCES:
        path = SHARED_DATA / KNOWN_SOURCES[source]["file"]
        if not path.is_file():
            raise SystemExit(f"{path} not found: the {source} data lives in ../shared/data (set BEHAVIORLM_SHARED_DATA)")
        reader = read_foursquare if source == "foursquare-nyc" else read_placelab
        return (reader(path, grid_deg=grid_deg) if source == "foursquare-nyc" else reader(path)), path
    path = Path(source)
    mapping = {"user": "user", "time": "time", "place": "place", "behavior": "behavior", "tz_offset": None} | columns
    return (
        read_table(
            path, user=mapping["user"], time_col=mapping["time"], place=mapping["place"] or None,
            behavior=mapping["behavior"], tz_offset_min=mapping["tz_offset"],
        ),
        path,
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
                jsonl.writelines(json.dumps({"instruction": prompt, "input": "", "output": label}, ensure_ascii=False) + "\n" for prompt, label in zip(frame["prompt"], frame["label"]))
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
    table = sets.behavior_table
    vocabulary = {
        "candidates": candidates,
        "anchor_threshold": config.anchor_threshold,
        "behaviors": table.to_dict(orient="records"),
        "stats": sets.stats,
    }
    write_json(out_dir / "behaviors.json", json.loads(json.dumps(vocabulary, default=_to_builtin)))
    return sets.stats


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value)}")


def registry_path(path: Path, dataset_info: Path = DATASET_INFO) -> str:
    """``path`` as LlamaFactory's registry names it: relative to the registry's folder (``dataset_dir``)."""
    return Path(os.path.relpath(path, dataset_info.parent)).as_posix()


def dataset_entries(name: str, data_root: Path, dataset_info: Path = DATASET_INFO) -> dict:
    """LlamaFactory registry entries for every set of ``name``."""
    columns = {"prompt": "instruction", "query": "input", "response": "output"}
    return {
        f"{name}_{s}": {"file_name": registry_path(data_root / name / f"{s}.jsonl", dataset_info), "columns": columns}
        for s in SETS
    }


def register(entries: dict, dataset_info: Path = DATASET_INFO) -> None:
    """Merge ``entries`` into LlamaFactory's ``dataset_info.json``, atomically, keeping other entries."""
    registry = json.loads(dataset_info.read_text(encoding="utf-8")) if dataset_info.is_file() else {}
    if all(registry.get(key) == value for key, value in entries.items()):
        return
    registry.update(entries)
    with atomic_output(dataset_info) as tmp:
        tmp.write_text(json.dumps(dict(sorted(registry.items())), indent=2) + "\n", encoding="utf-8")
    logger.info("registered %d datasets in %s", len(entries), dataset_info)


def convert(
    source: str = "default",
    name: str | None = None,
    preset: str = "cpu",
    columns: dict[str, str] | None = None,
    grid_deg: float | None = 0.05,
    data_root: Path = REPO_ROOT / "data",
    dataset_info: Path = DATASET_INFO,
    **overrides,
) -> Path:
    """Convert ``source`` with the sizes of ``preset``; ``overrides`` set :class:`SampleConfig` fields."""
    sizes = get_preset(preset)
    name = name or (source if source == "default" or source in KNOWN_SOURCES else Path(source).stem)
    known = KNOWN_SOURCES.get(source, {})
    config = SampleConfig(
        max_train=sizes.max_train, max_valid=sizes.max_valid, max_natural_test=sizes.max_natural_test,
        balanced_per_class=sizes.balanced_per_class, pool_per_class=sizes.pool_per_class,
        top_k=known.get("top_k"), split_by=known.get("split_by", "user"),
    )
    config = SampleConfig(**(asdict(config) | {k: v for k, v in overrides.items() if v is not None}))
    out_dir = data_root / name
    inputs = code_files("readers", "samples", "prompts", "convert", "simulator") | {"templates": TEMPLATE_DIR}
    if source != "default":
        inputs["events"] = SHARED_DATA / known["file"] if known else Path(source)
    stage_config = {"source": source, "columns": columns or {}, "grid_deg": grid_deg, "sample": asdict(config)}
    if source == "default":
        stage_config["simulator"] = {"users": sizes.sim_users, "days": sizes.sim_days}

    def build(tmp: Path) -> dict:
        events, path = load_events(source, columns or {}, grid_deg, sizes.sim_users, sizes.sim_days, config.seed)
        sets = build_sample_sets(events, config, source=str(path or source))
        return write_sets(sets, config, tmp)

    run_stage(f"convert:{name}", out_dir, inputs, stage_config, build)
    register(dataset_entries(name, data_root, dataset_info), dataset_info)
    return out_dir


def _parse_columns(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = [item.split("=", 1) for item in text.split(",")]
    allowed = {"user", "time", "place", "behavior", "tz_offset"}
    bad = [p[0] for p in pairs if len(p) != 2 or p[0] not in allowed]
    if bad:
        raise SystemExit(f"--columns takes KEY=COLUMN pairs with KEY in {sorted(allowed)}; got {bad}")
    return dict(pairs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="default", help="default, foursquare-nyc, mit-placelab, or a CSV/Parquet file")
    parser.add_argument("--name", help="data set name (default: from the source)")
    parser.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    parser.add_argument("--columns", help="for a user file: user=COL,time=COL,place=COL,behavior=COL[,tz_offset=COL]; place= for none")
    parser.add_argument("--grid-deg", default="0.05", help="Foursquare place cell size in degrees, or 'none'")
    parser.add_argument("--history-len", type=int)
    parser.add_argument("--anchor-threshold", type=float)
    parser.add_argument("--top-k", type=int, help="keep the K most frequent behaviors (other events are dropped)")
    parser.add_argument("--min-count", type=int, help="keep behaviors with at least N events (other events are dropped)")
    parser.add_argument("--split-by", choices=["user", "time"])
    parser.add_argument("--balanced-per-class", type=int)
    parser.add_argument("--max-train", type=int, help="cap of the training sets (default: the preset's)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--data-root", type=Path, default=REPO_ROOT / "data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = convert(
        source=args.source, name=args.name, preset=args.preset, columns=_parse_columns(args.columns),
        grid_deg=None if args.grid_deg.lower() == "none" else float(args.grid_deg), data_root=args.data_root,
        history_len=args.history_len, anchor_threshold=args.anchor_threshold, top_k=args.top_k,
        min_count=args.min_count, split_by=args.split_by, balanced_per_class=args.balanced_per_class, seed=args.seed,
        max_train=args.max_train,
    )
    print(out)


if __name__ == "__main__":
    main()
