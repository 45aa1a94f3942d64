"""``python -m behaviorlm_lf.eval``: the ``eval`` stage."""

from .evaluate import main

main()
