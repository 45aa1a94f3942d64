"""Events to samples: the readers and the simulator, samples and splits, prompts, the auxiliary corpus, and the ``data`` stage (``convert``)."""
