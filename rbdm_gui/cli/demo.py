"""``rbdm demo``: the RBDM §5.3.2 comparison and §5.4 masks on synthetic faces, end to end, no hardware.

Two simulated annotators (:func:`analysis.datasets.synthetic_faces.simulate_fixations`) look at one
synthetic face per label; their fixations become visual-span heatmaps, which are compared pair by pair
with every metric and averaged into RBDM Table 1. With a trained model (``--model``, or the default model in
``assets/`` once ``rbdm train-trainer`` has written it) the model's deep-Taylor saliency joins the
comparison and drives the three masks; without one, the first annotator's gaze heatmap drives them
(gaze masking, the paper's future work).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rbdm_gui.workflows.assets import DEFAULT_TRAINER

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from analysis.saliency import RelevanceExplainer

__all__ = ["add_demo", "cmd_demo"]


def add_demo(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm demo``."""
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)"
    )
    parser.add_argument(
        "--size", type=int, default=96, help="face size in pixels without a model (default: 96)"
    )
    parser.add_argument(
        "--viewers", type=int, default=2, help="simulated annotators (default: 2, as in RBDM)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"trained .keras model (default: {DEFAULT_TRAINER.name} if present)",
    )
    parser.add_argument("--no-model", action="store_true", help="compare annotators only, mask with gaze")
    parser.add_argument("--analyzer", default="deep_taylor", help="relevance analyzer (default: deep_taylor)")


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate, compare, mask; write ``table1.csv``, ``stimuli.csv`` and ``comparison.png``."""
    import numpy as np

    from analysis.datasets.synthetic_faces import make_face, simulate_fixations
    from analysis.geometry import ScreenGeometry
    from analysis.labels import LABELS
    from analysis.masking import MASKS
    from analysis.metrics import mean_table
    from analysis.perception import (
        compare_stimulus,
        mean_fixation_count,
        stimulus_heatmaps,
        visual_span_in_image,
    )
    from analysis.study import stimulus_rows_csv
    from rbdm_gui.workflows.figures import save_comparison_figure

    if args.viewers < 1:
        raise ValueError(f"--viewers must be at least 1; got {args.viewers!r}.")
    model_path = (
        None if args.no_model else (args.model or (DEFAULT_TRAINER if DEFAULT_TRAINER.exists() else None))
    )
    if model_path is not None and not Path(model_path).exists():
        raise ValueError(
            f"no model at {model_path}: train one with 'rbdm train-trainer', or pass --no-model."
        )
    explainer = _explainer(model_path, args.analyzer) if model_path else None
    size = explainer.input_shape[0] if explainer else args.size
    rng = np.random.default_rng(args.seed)
    faces = [make_face(label, size=size, rng=rng) for label in LABELS]
    viewers = [f"U{i + 1}" for i in range(args.viewers)]
    fixations = [
        {v: simulate_fixations(face, n_fixations=int(rng.integers(8, 16)), rng=rng) for v in viewers}
        for face in faces
    ]
    n_points = mean_fixation_count([len(points) for trial in fixations for points in trial.values()])
    geometry = ScreenGeometry()
    span = visual_span_in_image(geometry, geometry.stimulus_rect(), (size, size))
    images = np.stack([face.image for face in faces])
    relevance = _relevance(explainer, images) if explainer else None
    model_id = Path(model_path).stem if model_path else None

    tables, heatmaps, masks = [], [], []
    for i in range(len(faces)):
        by_model = {model_id: relevance[i]} if relevance is not None and model_id else {}
        tables.append(compare_stimulus(fixations[i], by_model, (size, size), span, n_points=n_points))
        heat = stimulus_heatmaps(fixations[i], by_model, (size, size), span, n_points=n_points)
        heatmaps.append(heat)
        source = relevance[i] if relevance is not None else heat[viewers[0]]
        options = {"perceptive": {"n_points": n_points, "c": span.c, "radius": span.radius}}
        masks.append({f"{name} mask": MASKS[name](source, **options.get(name, {})) for name in MASKS})

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    study = mean_table(tables)
    (out / "table1.csv").write_text(study.to_csv())
    (out / "stimuli.csv").write_text(
        stimulus_rows_csv({face.label: t for face, t in zip(faces, tables, strict=True)})
    )
    figure = save_comparison_figure(
        out / "comparison.png", list(images), heatmaps, masks, titles=[face.label for face in faces]
    )
    print(f"RBDM Table 1 on {len(faces)} synthetic faces, {len(viewers)} simulated annotators", end="")
    print(f", model {model_id} ({args.analyzer})" if model_id else " (no model: masks from U1's gaze)")
    print(f"visual span {span.radius:.2f} px, c {span.c:.2f} px at {size}×{size}; n = {n_points} points\n")
    print(study.format())
    print(f"\nwrote {out / 'table1.csv'}, {out / 'stimuli.csv'}, {figure}")
    return 0


def _explainer(model_path: Path, analyzer: str) -> RelevanceExplainer:
    from analysis.saliency import RelevanceExplainer

    return RelevanceExplainer.from_file(model_path, analyzer)


def _relevance(explainer: RelevanceExplainer, images: NDArray[np.float32]) -> NDArray[np.float32]:
    from analysis.saliency import maps_to_2d

    return maps_to_2d(explainer.analyze(images))
