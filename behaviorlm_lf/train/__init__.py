"""Training, in the pipeline's order: A-Tuning (``a_tune``), the selection and its pairs (``select``, ``pairs``), B-Tuning and its variants (``b_tune``)."""
