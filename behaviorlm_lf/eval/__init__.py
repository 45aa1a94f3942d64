"""Evaluation: the paper's metrics, the ``eval`` stage, the baselines, prediction and the run's report.

``python -m behaviorlm_lf.eval`` runs the ``eval`` stage (:mod:`.evaluate`)."""
