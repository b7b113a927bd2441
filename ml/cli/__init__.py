"""Command-line entry points: thin argparse shells over the ``ml`` library.

``python -m ml.cli.synth``, ``ml.cli.ingest``, ``ml.cli.train``,
``ml.cli.predict``, ``ml.cli.evaluate`` and ``ml.cli.experiment``; each
module's docstring shows its usage and ``--help`` lists its options
(docs/ML.md, "Commands"). Heavy imports (torch, SimpleITK) happen inside
``main`` so ``--help`` stays fast.
"""
