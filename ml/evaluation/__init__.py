"""Evaluating trained networks on prepared studies with ground truth.

``ml.evaluation.studies``: a model directory's ensemble and each of its
networks on a list of studies (``python -m ml.cli.evaluate``).
``ml.evaluation.experiment``: the paper's comparisons reproduced on our data
(U-Net with Dice vs volume-aware Dice, DeepMedic, the two ensembles;
``python -m ml.cli.experiment``), with the paper's tables in
``ml.evaluation.paper_tables``. Metrics come from ``ml.metrics``
(docs/METHOD.md, "Evaluation").
"""

from __future__ import annotations

from ml.evaluation.studies import NETWORK_THRESHOLD, evaluate_studies, format_summary

__all__ = ["NETWORK_THRESHOLD", "evaluate_studies", "format_summary"]
