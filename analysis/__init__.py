"""Numbers only: geometry, heatmaps, metrics, masking, saliency, datasets, training, SpRAy, prototypes.

No Qt here, and no TensorFlow at import time: the modules that need TensorFlow (``models``,
``training``, ``saliency`` and the ones built on them) import it inside their functions through
:mod:`analysis._optional`. Import the modules themselves; this package re-exports nothing, so that
``import analysis.heatmap`` stays fast.

Modules, by paper section (RBDM = Schiller et al. 2020, TP = Finzel et al. 2021):

- ``geometry`` — screen, visual angle, screen → image mapping (RBDM §5.3.1, §5.3.2)
- ``heatmap`` — visual-span Gaussian heatmaps, top-n relevant pixels (RBDM §5.3.2)
- ``perception`` — gaze vs. saliency per stimulus and study (RBDM §5.3, Table 1)
- ``metrics`` — ZeroMeasure, Spearman, cosine distance, NSS, CC, SIM, KLD, AUC-Judd (RBDM Table 1)
- ``masking`` — negative, mean and perceptive masking (RBDM §5.4)
- ``models``, ``training``, ``saliency`` — the Trainer and its relevance maps (RBDM §5.1, §5.2)
- ``masked_dataset`` — masked copies of a dataset written to disk, resumable (RBDM §5.4, §5.5)
- ``trainee``, ``experiment`` — the Trainee with the switch and the seven-variant grid (RBDM §5.5, §6)
- ``grid_engine`` — an experiment grid's cells as tasks on Ray, locally or on a cluster; resumable (§6)
- ``learning_speed``, ``paired_statistics``, ``experiment_report`` — learning-speed measures of a curve;
  CIs, paired tests, Holm and verdicts over seeds; a run's report.md (RBDM §6)
- ``evaluation`` — accuracy, macro-F1, per-class F1 and confusion matrix of any model on any images
- ``datasets`` — FER2013 folders, FERPlus, CK+, AffectNet, synthetic faces (RBDM §4); CK+ and synthetic
  action-unit sequences (TP §3.1). The synthetic data are drawn there too: ``datasets.synthetic_faces``
  (faces with known discriminative regions, a simulated annotator's gaze; loader ``datasets.synthetic``)
  and ``datasets.synthetic_sequences`` (AU sequences with a planted schedule, beside
  ``datasets.ck_sequences``)
- ``action_units`` — the multi-label action unit model: build, train, save, load, predict (TP §3.1)
- ``unit_relevance`` — LRP relevance map per frame and active unit (TP §3.2)
- ``spray`` — spectral relevance analysis, and SpRAy per action unit over sequences (TP §3.3)
- ``prototypes`` — stages and temporal prototypes, TP Table 1 statistics (TP §3.4)
- ``prototype_pipeline`` — the TP pipeline over sequences, its result and ``.npz`` file (TP §3, §3.4)
- ``projection`` — Top-X relevance projection (TP §3.5)
- ``visualisation`` — BWR heatmaps, Top-X overlays, stage panels and prototype strips (TP §3.5)
- ``study`` — study-level tables over stimuli (RBDM Table 1)
- ``files`` — atomic writes (temporary file, then rename) and damaged files kept aside
- ``progress`` — the progress-callback type of long work, ``report(fraction, text)``
"""

from __future__ import annotations

__all__ = [
    "action_units",
    "datasets",
    "evaluation",
    "experiment",
    "experiment_report",
    "files",
    "geometry",
    "grid_engine",
    "heatmap",
    "labels",
    "learning_speed",
    "masked_dataset",
    "masking",
    "metrics",
    "models",
    "paired_statistics",
    "perception",
    "progress",
    "projection",
    "prototype_pipeline",
    "prototypes",
    "saliency",
    "spray",
    "study",
    "trainee",
    "training",
    "unit_relevance",
    "visualisation",
]
