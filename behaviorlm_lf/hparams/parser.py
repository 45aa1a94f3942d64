"""Command line, ``--config`` YAML file and preset overlay into the settings dataclasses (``HfArgumentParser``)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import yaml

from ..extras.errors import UserError
from .presets import preset_overlay


def _as_flags(parser: argparse.ArgumentParser, values: dict, known: set[str], source: str) -> list[str]:
    """A config file's settings as command-line flags, so that argparse checks their types and choices as it checks
    the command line's (a default set directly would reach the settings class unchecked)."""
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {unknown}")
    flags = []
    for key, value in values.items():
        if isinstance(value, dict):
            raise UserError(f"{source}: {key}: expected a value or a list, got a mapping")
        action = parser._option_string_actions.get(f"--{key}")
        if isinstance(value, list) and action is not None and action.nargs not in ("+", "*"):
            raise UserError(f"{source}: {key}: takes one value, got a list")
        if value is not None:
            flags += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return flags


def _check_alone(parser: argparse.ArgumentParser, flags: list[str], source: str) -> None:
    """Parse a config file's flags alone (required flags may come from the command line), so that an error names the file."""
    required = [action for action in parser._actions if action.required]
    parser.error = _raise_user_error(f"{source}: ")
    try:
        for action in required:
            action.required = False
        parser.parse_known_args(flags)
    finally:
        for action in required:
            action.required = True


def _raise_user_error(prefix: str):
    """argparse's ``error`` as one :class:`UserError` line (it would print the usage, then exit)."""

    def error(message: str):
        raise UserError(f"{prefix}{message} (--help lists the flags)")

    return error


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
    from_config = _as_flags(parser, from_file, known, str(first.config))
    if from_config:
        _check_alone(parser, from_config, str(first.config))
    parser.error = _raise_user_error("")
    *parsed, unknown = parser.parse_args_into_dataclasses(args=[*from_config, *(sys.argv[1:] if argv is None else argv)], return_remaining_strings=True)
    if unknown:
        raise UserError(f"unknown flag or argument {' '.join(unknown)!r} (--help lists the flags)")
    return tuple(p for p in parsed if not isinstance(p, argparse.Namespace))


def for_preset(cls: type, preset: str, **values):
    """A dataclass for ``preset`` with ``values`` over its overlay: how the benchmark makes each row's settings."""

    names = {f.name for f in dataclasses.fields(cls)}
    overlay = preset_overlay(preset, cls.preset_key, values.get("variant"))
    return cls(**{k: v for k, v in overlay.items() if k in names} | values)
