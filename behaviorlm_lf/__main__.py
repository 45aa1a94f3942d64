"""``python -m behaviorlm_lf <command>``: the ``behaviorlm`` command."""

from .cli import main

main()
