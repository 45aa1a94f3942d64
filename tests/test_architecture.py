"""The house: where a run lives, the registry, one set of flags, the import graph, and an installed package."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from behaviorlm_lf.cli import COMMANDS
from behaviorlm_lf.extras.layout import RunLayout, Selection
from behaviorlm_lf.hparams import RunArguments, SelectArguments, parse
from behaviorlm_lf.lf.registry import entry, read_registry, register

PACKAGE = REPO_ROOT / "behaviorlm_lf"
# The folders from the ground up: each imports only those before it. The studies sit on top, and nothing of the
# pipeline imports them; cli.py and the __main__ entry points reach the subcommands by name.
LAYERS = ("extras", "lf", "hparams", "data", "model", "eval", "train", "studies")
# Modules that run one stage of the pipeline: they sit side by side, and none imports another.
STAGES = {"data.convert", "model.backbones", "train.a_tune", "train.select", "train.b_tune", "eval.evaluate",
          "eval.baselines", "eval.predict"}


def test_layout_places_every_output_of_a_run():
    layout = RunLayout("default", "cpu", root=Path("/r"))
    assert layout.data_dir == Path("/r/data/default") and layout.registry == Path("/r/dataset_info.json")
    assert layout.set_registry_name("pool") == "default_pool"
    assert layout.first_stage_dir() == Path("/r/saves/default/cpu/a_tune")
    assert layout.merged_dir() == Path("/r/saves/default/cpu/a_merged")
    assert layout.pool_scores_dir() == Path("/r/saves/default/cpu/pool_scores")
    suffix = Selection("random", 5, "prose").suffix(default_per_class=10)
    assert suffix == "_random_F5"
    assert layout.select_dir("anchor_train", suffix) == Path("/r/saves/default/cpu/select_random_F5")
    assert layout.b_tune_dir("all_train", "", "sft") == Path("/r/saves/default/cpu/sft_all_train_b_tune_sft")
    assert layout.selected_set("anchor_train", "", "pairs") == "pairs"
    assert layout.report_dir("eval") == Path("/r/reports/default/cpu/eval")
    seeded = RunLayout("foursquare-nyc", "cpu", seed=2, root=Path("/r"), sub_run="BehaviorLM")
    assert seeded.data_dir == Path("/r/data/foursquare-nyc-seed2")
    assert seeded.first_stage_dir() == Path("/r/saves/foursquare-nyc-seed2/cpu/BehaviorLM/a_tune")
    assert seeded.selected_set("anchor_train", "_topk", "pairs") == "BehaviorLM_pairs_topk"
    with pytest.raises(ValueError, match="first stage"):
        layout.first_stage_dir("everything")


def test_registry_merges_entries_with_paths_relative_to_it(tmp_path):
    registry = tmp_path / "data" / "dataset_info.json"
    register({"a_pool": entry(tmp_path / "data" / "a" / "pool.jsonl", registry)}, registry)
    register({"a_pairs": entry(tmp_path / "data" / "a" / "pairs.jsonl", registry, pairs=True)}, registry)
    found = read_registry(registry)
    assert found["a_pool"]["file_name"] == "a/pool.jsonl" and found["a_pairs"]["ranking"] is True
    assert list(found) == sorted(found)


def test_presets_and_config_files_overlay_the_defaults_and_the_command_line_wins(tmp_path):
    run, sel = parse((RunArguments, SelectArguments), ["--preset", "smoke"])
    assert run.model == "models/tiny-llama" and sel.per_class == 2
    config = tmp_path / "settings.yaml"
    config.write_text("per_class: 7\nstrategy: topk\n")
    _, sel = parse((RunArguments, SelectArguments), ["--preset", "smoke", "--config", str(config), "--strategy", "random"])
    assert sel.per_class == 7 and sel.strategy == "random"


def _flags(command: str) -> dict[str, str]:
    """Every flag of a subcommand and its help text."""
    text = subprocess.run(
        [sys.executable, "-m", "behaviorlm_lf", command, "--help"], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    ).stdout
    flags = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            flags[stripped.split()[0].split(",")[0]] = stripped
    return flags


@pytest.mark.slow
def test_the_same_flag_means_the_same_thing_in_every_subcommand():
    seen: dict[str, tuple[str, str]] = {}
    for command in ("data", "a-tune", "select", "merge", "b-tune", "eval", "baseline", "predict", "report", "benchmark"):
        for flag, line in _flags(command).items():
            meaning = line.split(None, 2)[-1] if len(line.split()) > 2 else ""
            if flag in seen and flag not in ("--help",):
                assert seen[flag][1] == meaning, f"{flag}: {seen[flag][0]} says {seen[flag][1]!r}, {command} says {meaning!r}"
            seen.setdefault(flag, (command, meaning))
    for shared in ("--dataset", "--preset", "--seed", "--root", "--model", "--template"):
        assert shared in seen


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name under it ("train.a_tune"; a folder's face is "train")."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """The package modules ``module`` imports, relative imports resolved ("from ..eval.metrics" -> "eval.metrics")."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return {name for name in found if name}


def test_each_folder_imports_only_the_folders_below_it():
    modules = _modules()
    folders = {name.split(".")[0] for name in modules if "." in name}
    assert folders == set(LAYERS), f"folders without a layer, or layers without a folder: {folders ^ set(LAYERS)}"
    upward = []
    for module, path in modules.items():
        if module.split(".")[0] not in LAYERS or module.endswith("__main__"):
            continue  # cli and the __main__ entry points
        allowed = set(LAYERS[: LAYERS.index(module.split(".")[0]) + 1])
        upward += [f"{module} imports {name}" for name in _imports(module, path) if name.split(".")[0] not in allowed]
    assert not upward, upward


def test_stages_sit_side_by_side():
    modules = _modules()
    for stage in STAGES:
        others = _imports(stage, modules[stage]) & (STAGES - {stage})
        assert not others, f"{stage} imports another stage: {others}"


@pytest.mark.slow
def test_python_m_eval_still_runs_the_eval_stage():
    """The design card's `python -m behaviorlm_lf.eval`: the eval folder's __main__ is the `eval` subcommand."""
    done = subprocess.run([sys.executable, "-m", "behaviorlm_lf.eval", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert "--run" in done.stdout and "--adapter" in done.stdout


def test_every_subcommand_names_a_function_and_the_settings_it_takes():
    import importlib
    import inspect

    from behaviorlm_lf import hparams

    for name, command in COMMANDS.items():
        assert command.module in _modules(), f"{name}: no module {command.module}"
        module = importlib.import_module(f"behaviorlm_lf.{command.module}")
        parameters = list(inspect.signature(getattr(module, command.function)).parameters.values())
        takes = [p.annotation for p in parameters[: len(command.settings)]]
        assert takes == list(command.settings), f"{name}: {command.function} takes {takes}, the table parses {command.settings}"
        assert all(hasattr(hparams, cls) for cls in command.settings), name
        assert ("command" in {p.name for p in parameters}) == command.records_command, name
        if command.show:
            assert callable(getattr(module, command.show)), name


def test_one_main_parses_logs_and_prints_for_every_subcommand():
    """No stage or study module keeps a copy of the parse / log / print skeleton: the CLI's one main is the entry
    point. gpu_kit keeps its own, standard-library one: it runs on the GPU machine before anything is installed."""
    copies = [m for m, path in _modules().items() if "def main(" in path.read_text() and m not in ("cli", "lf.hooks", "studies.gpu_kit")]
    assert not copies, copies


@pytest.mark.slow
def test_an_installed_wheel_runs_the_data_stage_from_any_folder(tmp_path):
    """`pip install .` users have the templates, YAML files and corpus as package data."""
    # build from a copy: setuptools writes build/ beside the sources
    outputs = {".venv", ".git", "models", "data", "saves", "reports", "build", "gpu_kit"}  # at the root only: the
    # package has a data/ folder of its own

    def ignored(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n.endswith(".egg-info") or (Path(folder) == REPO_ROOT and n in outputs)}

    source = shutil.copytree(REPO_ROOT, tmp_path / "source", ignore=ignored, symlinks=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("behaviorlm_lf-*.whl"))
    venv.create(tmp_path / "venv", with_pip=False)
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    # the dependencies come from this environment's site-packages (a plain path line, not its editable finder)
    (site / "deps.pth").write_text(next(Path(p) for p in sys.path if p.endswith("site-packages")).as_posix() + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True, capture_output=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = tmp_path / "venv" / "bin" / "python"
    where = subprocess.run([python, "-c", "import behaviorlm_lf; print(behaviorlm_lf.__file__)"], cwd=elsewhere, capture_output=True, text=True, check=True)
    assert str(site) in where.stdout
    result = subprocess.run([python, "-m", "behaviorlm_lf", "data", "--preset", "smoke"], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    registry = json.loads((elsewhere / "dataset_info.json").read_text())
    assert all((elsewhere / e["file_name"]).is_file() for e in registry.values())
    assert "personal assistant" in (elsewhere / "data" / "default" / "valid.jsonl").read_text()


def test_every_setting_of_every_command_has_a_help_text():
    """`behaviorlm <command> --help` explains every flag: each field of every settings class says what it does."""
    import dataclasses
    import importlib

    missing = []
    for module in sorted(name for name in _modules() if name and not name.endswith("__main__")):
        loaded = importlib.import_module(f"behaviorlm_lf.{module}")
        for name, cls in vars(loaded).items():
            if isinstance(cls, type) and dataclasses.is_dataclass(cls) and hasattr(cls, "preset_key") and cls.__module__ == loaded.__name__:
                missing += [f"{name}.{f.name}" for f in dataclasses.fields(cls) if not f.metadata.get("help")]
    assert not missing, f"settings without a help text: {missing}"


def test_the_tracked_registry_names_the_default_data_and_a_conversion_only_adds_to_it(tmp_path, tiny_model):
    """`dataset_info.json` at the root is the registry the YAMLs read: in a fresh clone it names the sets `make data`
    writes (each exists afterwards, the file unchanged); converting another data set adds its entries beside them."""
    import dataclasses

    from conftest import convert_smoke, smoke_run

    tracked = read_registry(REPO_ROOT / "dataset_info.json")
    assert tracked and all(name.startswith("default_") for name in tracked)
    shutil.copyfile(REPO_ROOT / "dataset_info.json", tmp_path / "dataset_info.json")
    run = smoke_run(tmp_path, tiny_model)
    convert_smoke(run)
    assert read_registry(tmp_path / "dataset_info.json") == tracked
    assert all((tmp_path / e["file_name"]).is_file() for e in tracked.values())
    convert_smoke(dataclasses.replace(run, dataset="other"), source="default")
    grown = read_registry(tmp_path / "dataset_info.json")
    assert {k: grown[k] for k in tracked} == tracked and any(k.startswith("other_") for k in grown)


def test_the_yamls_run_as_written_from_the_root_on_the_default_data_and_cpu_preset():
    """Their registry is the root's, their folders those the cpu preset's stages write (`make select` and before)."""
    import yaml

    from behaviorlm_lf.lf.run import CONFIG_DIR
    from behaviorlm_lf.train.b_tune import VARIANTS

    layout = RunLayout("default", "cpu")
    for config in CONFIG_DIR.glob("*.yaml"):
        settings = yaml.safe_load(config.read_text())
        if "dataset_dir" in settings:
            assert settings["dataset_dir"] == ".", config.name
    a_tune = yaml.safe_load((CONFIG_DIR / "a_tune.yaml").read_text())
    assert a_tune["output_dir"] == str(layout.first_stage_dir()) and a_tune["dataset"].split(",")[0] in read_registry(REPO_ROOT / "dataset_info.json")
    for name, variant in VARIANTS.items():
        settings = yaml.safe_load(variant.config.read_text())
        assert settings["model_name_or_path"] == str(layout.b_tune_base_dir("anchor_train", "", name)), name
        assert settings["output_dir"] == str(layout.b_tune_dir("anchor_train", "", name)), name


def test_no_command_writes_where_git_tracks_files():
    """Every folder a command writes under the root is ignored by git and holds no tracked file; the registry, the
    one tracked file a command extends, is checked above. A result is promoted to docs/results/ by a commit."""
    from behaviorlm_lf.hparams import CurveArguments
    from behaviorlm_lf.studies.gpu_kit import KIT

    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    layout = RunLayout("default", "cpu", root=REPO_ROOT)
    written = [layout.data_root, layout.run_dir.parents[1], layout.reports_dir.parents[1], layout.models_dir, REPO_ROOT / KIT,
               REPO_ROOT / CurveArguments().out]
    for folder in written:
        relative = folder.relative_to(REPO_ROOT)
        assert subprocess.run(["git", "check-ignore", "-q", str(relative) + "/"], cwd=REPO_ROOT).returncode == 0, f"{relative} is not ignored"
        tracked = subprocess.run(["git", "ls-files", str(relative)], cwd=REPO_ROOT, capture_output=True, text=True).stdout
        assert not tracked, f"tracked files under {relative}: {tracked}"


def test_every_preset_value_names_a_field_of_its_settings_class():
    """A preset only sets fields that exist: parse() would otherwise drop a misspelt key without a word."""
    import dataclasses

    import behaviorlm_lf.hparams as hparams
    from behaviorlm_lf.hparams.presets import PRESETS

    classes = {cls.preset_key: cls for cls in vars(hparams).values() if isinstance(cls, type) and hasattr(cls, "preset_key")}
    unknown = []
    for preset, overlays in PRESETS.items():
        for key, values in overlays.items():
            cls = classes.get(key.split(":")[0])
            if cls is None:
                unknown.append(f"{preset}: {key} (no settings class)")
                continue
            names = {f.name for f in dataclasses.fields(cls)}
            unknown += [f"{preset}: {key}.{name}" for name in values if name not in names]
    assert not unknown, unknown
