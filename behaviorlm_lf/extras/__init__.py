"""Plumbing every layer may use: user errors, atomic files, the stage cache, where a run's outputs live, the machine's precision. Imports nothing else of the package."""
