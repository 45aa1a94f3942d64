"""``python -m behaviorlm_lf.eval``: the ``eval`` subcommand, as the design card has it."""

import sys

from ..cli import main

main(["eval", *sys.argv[1:]])
