"""Every setting of every command, as typed dataclasses: the one source of flags, YAML files and presets.

Like LlamaFactory's ``hparams`` and TRL's scripts, each command parses a few of
these dataclasses with transformers' ``HfArgumentParser``; the same field means
the same thing and has the same flag (``--per-class``, ``--first-stage``) in every
command. Values come, from weakest to strongest, from the field's default, the
preset's overlay (:mod:`behaviorlm_lf.hparams.presets`), a ``--config`` YAML file and the
command line. A ``None`` training hyper-parameter means "the YAML's value" (the
paper's) from ``llamafactory_configs/``.
"""


from .data_args import DataArguments
from .eval_args import BaselineArguments, EvalArguments, PredictArguments
from .parser import for_preset, parse
from .run_args import ModelsArguments, RunArguments
from .study_args import (
    BenchmarkArguments,
    BenchScoreArguments,
    BenchTrainArguments,
    CurveArguments,
    GpuBenchArguments,
    StudyArguments,
)
from .train_args import ATuneArguments, BTuneArguments, FirstStageArguments, SelectArguments

__all__ = [
    "ATuneArguments", "BTuneArguments", "BaselineArguments", "BenchScoreArguments", "BenchTrainArguments", "BenchmarkArguments",
    "CurveArguments", "DataArguments", "EvalArguments", "FirstStageArguments", "GpuBenchArguments", "ModelsArguments",
    "PredictArguments", "RunArguments", "SelectArguments", "StudyArguments", "for_preset", "parse",
]
