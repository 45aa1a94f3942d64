"""Command line, ``--config`` YAML file and preset overlay into the settings dataclasses (``HfArgumentParser``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import yaml

from ..extras.errors import UserError
from .presets import preset_overlay


def _apply(parser: argparse.ArgumentParser, values: dict, known: set[str], source: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {unknown}")
    parser.set_defaults(**values)


def parse(classes: tuple[type, ...], argv: list[str] | None = None, description: str | None = None, prog: str | None = None) -> tuple:
    """Parse ``argv`` into ``classes`` with the preset overlay and an optional ``--config`` YAML file.

    The preset comes from ``--preset`` (or ``PRESET`` in the environment, as the
    Makefile passes it); its overlay of each class sets that class's defaults.
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(classes, prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file of settings (the command line overrides it)")
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--preset", default=os.environ.get("PRESET", "cpu"))
    early.add_argument("--config", type=Path)
    early.add_argument("--variant")
    first, _ = early.parse_known_args(argv)
    from_file = {}
    if first.config is not None:
        if not first.config.is_file():
            raise UserError(f"{first.config}: no such config file")
        try:
            from_file = yaml.safe_load(first.config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            where = f" at line {err.problem_mark.line + 1}" if getattr(err, "problem_mark", None) else ""
            raise UserError(f"{first.config}: not readable YAML{where}") from err
        if not isinstance(from_file, dict):
            raise UserError(f"{first.config}: expected a mapping of setting: value, got a {type(from_file).__name__}")
    preset = from_file.get("preset", first.preset) if "--preset" not in (argv or []) else first.preset
    parser.set_defaults(preset=preset)
    variant = first.variant or from_file.get("variant")  # picks the preset's per-variant overlay
    known = {f.name for cls in classes for f in dataclasses.fields(cls)}
    for cls in classes:
        overlay = preset_overlay(preset, cls.preset_key, variant)
        parser.set_defaults(**{key: value for key, value in overlay.items() if key in {f.name for f in dataclasses.fields(cls)}})
    _apply(parser, from_file, known, str(first.config))
    parsed = parser.parse_args_into_dataclasses(args=argv)
    return tuple(p for p in parsed if not isinstance(p, argparse.Namespace))


def for_preset(cls: type, preset: str, **values):
    """A dataclass for ``preset`` with ``values`` over its overlay: how the benchmark makes each row's settings."""

    names = {f.name for f in dataclasses.fields(cls)}
    overlay = preset_overlay(preset, cls.preset_key, values.get("variant"))
    return cls(**{k: v for k, v in overlay.items() if k in names} | values)
