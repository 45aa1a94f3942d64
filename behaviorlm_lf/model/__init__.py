"""Backbones: converting the default one (or making the tests' tiny one), and exact candidate scoring with a loaded model (``scorer``, its batches packed by ``packing``)."""
