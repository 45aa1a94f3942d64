"""A short benchmark on one GPU: the main rows at sizes a CPU cannot reach, in minutes.

    make gpu-bench                                  # on a GPU machine (the kit installed, see gpu_kit.py)
    make gpu-bench PRESET=smoke DEVICE=cpu DATASET=default    # the same command at smoke size on a CPU (CI)

Foursquare NYC (50 categories) with SmolLM2-135M at the ``gpu-bench`` preset:
4,000 training samples, F = 20, 50 balanced test samples per class and 1,000
natural ones; popularity, Markov and SASRec (fit on the whole training split),
LLM-NT, full fine-tuning and BehaviorLM. A-Tuning mixes in the shared alpaca
corpus (999 conversations; the kit carries it) unless ``--aux`` names another:
epsilon x 4,000 anchor samples needs 200, more than the built-in corpus holds.
Writes the benchmark's ``results.md`` with stage times and GPU memory peaks.
Fails at once where there is no GPU, unless ``--device cpu``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from .benchmark import BenchmarkArguments, benchmark
from .convert import shared_data
from .errors import UserError, user_errors_exit
from .gpu_kit import ALPACA
from .hparams import DataArguments, RunArguments, parse
from .models import DEFAULT_MODEL_DIR, make_default

logger = logging.getLogger(__name__)

DEFAULTS = ["--preset", "gpu-bench", "--dataset", "foursquare-nyc"]
BASELINES = ["popularity", "markov", "sasrec"]


@dataclass
class GpuBenchArguments:
    preset_key: ClassVar[str] = "gpu_bench"
    device: Literal["cuda", "cpu"] = field(default="cuda", metadata={"help": "cpu runs the same command without a GPU (smoke)"})


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    import torch

    argv = DEFAULTS + list(sys.argv[1:] if argv is None else argv)  # later flags win
    run, data, bench, args = parse((RunArguments, DataArguments, BenchmarkArguments, GpuBenchArguments), argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("no CUDA GPU on this machine: run `make gpu-bench` on a GPU machine, or DEVICE=cpu for the smoke run")
    started = time.time()
    if run.model and run.model.endswith(DEFAULT_MODEL_DIR.name) and not (run.layout().models_dir / DEFAULT_MODEL_DIR.name).is_dir():
        make_default(run.layout().models_dir / DEFAULT_MODEL_DIR.name)
    bench = dataclasses.replace(bench, rows="main", baselines=BASELINES)
    alpaca = shared_data(run.root) / ALPACA
    if bench.aux is None and alpaca.is_file():
        bench = dataclasses.replace(bench, aux=alpaca)
    logger.info("auxiliary corpus: %s", bench.aux or "the built-in corpus")
    out = benchmark(run, data, bench, command="behaviorlm gpu-bench " + " ".join(argv[len(DEFAULTS):]))
    print(f"{out / 'results.md'} ({time.time() - started:.0f} s, device {torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu'})")


if __name__ == "__main__":
    main()
