"""The ``rbdm`` command line.

Each subcommand is a small function ``cmd_<name>`` (its options added by ``add_<name>``): it calls
:mod:`analysis` or :mod:`tracking`, and writes files or prints a table. Heavy packages (Qt, TensorFlow)
are imported inside the subcommands that need them, so ``rbdm --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rbdm_gui.workflows.assets import DEFAULT_UNIT_MODEL

__all__ = ["COMMANDS", "Command", "build_parser", "cmd_geometry", "cmd_gui", "cmd_prototypes", "main"]

_DESCRIPTION = """\
RBDM Studio: eye-tracked labeling of face images, comparison of human gaze with a model's
saliency maps, and relevance-based data masking (Schiller et al. 2020; Finzel et al. 2021).

Run 'rbdm COMMAND --help' for the options of one command."""


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its name, one-line help, how to add its options and how to run it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _add_geometry(parser: argparse.ArgumentParser) -> None:
    _add_screen_arguments(parser)
    from analysis.geometry import VISUAL_SPAN_DEG

    parser.add_argument(
        "--angle-deg",
        type=float,
        default=VISUAL_SPAN_DEG,
        help=f"visual angle (default: {VISUAL_SPAN_DEG:g})",
    )
    parser.add_argument(
        "--image-px", type=int, default=None, help="also give c and span in pixels of an image this wide"
    )


def _add_screen_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('screen (defaults: the RBDM study, 27" 2560×1440 at 70 cm)')
    group.add_argument("--screen-width-px", type=int, default=2560)
    group.add_argument("--screen-height-px", type=int, default=1440)
    group.add_argument("--diagonal-in", type=float, default=27.0)
    group.add_argument("--distance-cm", type=float, default=70.0)
    group.add_argument(
        "--stimulus-px", type=float, default=1200.0, help="drawn size of the stimulus (default: 1200)"
    )


def _screen(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from analysis.geometry import ScreenGeometry

    return ScreenGeometry(args.screen_width_px, args.screen_height_px, args.diagonal_in, args.distance_cm)


def cmd_geometry(args: argparse.Namespace) -> int:
    """``rbdm geometry``: the visual span and the heatmap Gaussian's c of a screen (RBDM §5.3.2)."""
    geometry = _screen(args)
    rect = geometry.stimulus_rect(args.stimulus_px)
    span = geometry.visual_span_px(args.angle_deg)
    c = geometry.gaussian_c(args.angle_deg)
    resolution = f"{geometry.width_px}×{geometry.height_px} px"
    print(f'screen            {resolution}, {geometry.diagonal_in}" at {geometry.distance_cm} cm')
    print(f"pixels per cm     {geometry.px_per_cm:.3f}")
    print(
        f"stimulus          {rect.width_px:.0f}×{rect.height_px:.0f} px at ({rect.x_px:.0f}, {rect.y_px:.0f})"
    )
    print(f"visual span {args.angle_deg:g}°   {span:.2f} screen px")
    print(f"gaussian c        {c:.2f} screen px  (0.17 × span; FWHM {2.358 * c:.2f} px)")
    if args.image_px:
        scale = args.image_px / rect.width_px
        print(f"in a {args.image_px} px image   span {span * scale:.3f} px, c {c * scale:.3f} px")
    return 0


def _add_gui(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings", type=Path, default=None, help="settings file (default: in the user's config folder)"
    )


def cmd_gui(args: argparse.Namespace) -> int:
    """``rbdm gui``: the desktop app."""
    from rbdm_gui.screens.app import main as run_app  # imports Qt

    return run_app(settings_file=args.settings)


def _lazy_command(
    name: str, *, module: str = "commands_models"
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """Lazy wrappers for ``add_<name>`` and ``cmd_<name>`` of ``rbdm_gui.cli.<module>``, imported when
    used."""

    def add(parser: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(f"rbdm_gui.cli.{module}"), f"add_{name}")(parser)

    def run(args: argparse.Namespace) -> int:
        found = importlib.import_module(f"rbdm_gui.cli.{module}")
        return int(getattr(found, f"cmd_{name}")(args))

    return add, run


def _add_prototypes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default="synthetic",
        help="'synthetic' (default) or a CK+ folder with cohn-kanade-images/ and FACS/",
    )
    parser.add_argument(
        "--sequences", type=int, default=12, help="synthetic sequences per class (default: 12)"
    )
    parser.add_argument("--limit", type=int, default=None, help="CK+: only the first N sequences")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="action unit model (.keras with its .json card; default: assets/action_units.keras if present, "
        "else the small default is trained, about a minute)",
    )
    parser.add_argument(
        "--train", action="store_true", help="train the small default model even if one is present"
    )
    parser.add_argument(
        "--save-model",
        type=Path,
        default=None,
        help="save a model trained here (e.g. assets/action_units.keras)",
    )
    parser.add_argument(
        "--x", type=float, default=25.0, help="Top-X relevance projection in percent (default: 25)"
    )
    parser.add_argument(
        "--maps",
        choices=("cluster", "stage"),
        default="cluster",
        help="strip maps: cluster means (default) or the stage's own",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/prototypes"), help="output folder (default: out/prototypes)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _prototype_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The model and its units: --model, else the shipped default, else trained now (and saved if asked)."""
    from analysis.action_units import load_unit_model, save_unit_model, train_default_unit_model

    shipped = DEFAULT_UNIT_MODEL
    path = (
        args.model if args.model is not None else (shipped if shipped.is_file() and not args.train else None)
    )
    if path is not None:
        model, card = load_unit_model(path)
        print(f"model             {path} (units {', '.join(card.labels)})")
        return model, tuple(card.labels)
    print("model             training the small default on synthetic sequences…", flush=True)
    result = train_default_unit_model(
        seed=args.seed,
        on_epoch=lambda r: print(f"  epoch {r.epoch:2d}  val macro-F1 {r.val_macro_f1:.3f}", flush=True),
    )
    if args.save_model is not None:
        save_unit_model(args.save_model, result)
        print(f"saved model       {args.save_model}")
    return result.model, result.units


def _prototype_sequences(args: argparse.Namespace, input_shape: tuple[int, int, int]) -> list:  # type: ignore[type-arg]
    """Synthetic sequences, or CK+ sequences decoded at the model's input size."""
    import numpy as np

    if args.data == "synthetic":
        from analysis.datasets.synthetic_sequences import make_sequences

        return make_sequences(
            args.sequences, rng=np.random.default_rng(args.seed), size=input_shape[0], rgb=input_shape[2] == 3
        )
    from analysis.datasets.ck_sequences import CKSequenceLoader

    loader = CKSequenceLoader(args.data, size=input_shape[:2], rgb=input_shape[2] == 3)
    ids = [item.id for item in loader.sequences][: args.limit]
    return list(loader.iter_sequences(ids=ids))


def _write_prototype_outputs(result, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """statistics.csv, prototypes.csv, strips/*.png, clusters/*.png and result.npz under --out."""
    import csv

    from analysis.prototype_pipeline import save_result
    from analysis.prototypes import name_labels, temporal_prototype
    from analysis.visualisation import (
        bwr_heatmap,
        label_colours,
        prototype_strip,
        save_png,
        stage_panels,
        upscale,
    )

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "statistics.csv").write_text(result.table.to_csv(), encoding="utf-8")
    with (out / "prototypes.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["id", "class_name", "n_frames", "n_stages", "temporal_prototype", "without_clustering"]
        )
        for item in result.sequences:
            plain = temporal_prototype(item.clusters, naming=name_labels)
            writer.writerow(
                [
                    item.id,
                    item.class_name,
                    item.n_frames,
                    item.prototype.n_stages,
                    str(item.prototype),
                    str(plain),
                ]
            )
    colours = label_colours(result.units)
    for item in result.sequences:
        strip = prototype_strip(
            stage_panels(result, item.id, source=args.maps), colours, x=args.x / 100.0, scale=4
        )
        save_png(out / "strips" / f"{item.id.replace('/', '_')}.png", strip)
    for (unit, cluster), mean in result.mean_maps.items():
        save_png(out / "clusters" / f"{unit}_{cluster}.png", upscale(bwr_heatmap(mean), factor=4))
    save_result(out / "result.npz", result)


def cmd_prototypes(args: argparse.Namespace) -> int:
    """``rbdm prototypes``: temporal prototypes of an action unit model on sequences (TP §3.2-3.5)."""
    import numpy as np

    from analysis.prototype_pipeline import analyse_sequences

    if not 0.0 < args.x <= 100.0:
        raise ValueError(
            f"--x must be a percentage in (0, 100]; got {args.x!r}. The paper's Top-25 is --x 25."
        )
    model, units = _prototype_model(args)
    sequences = _prototype_sequences(args, model.input_shape)
    if not sequences:
        raise ValueError(f"no sequences found in {args.data!r}.")
    print(f"sequences         {len(sequences)} from {args.data}", flush=True)
    result = analyse_sequences(model, sequences, units=units, rng=np.random.default_rng(args.seed))
    _write_prototype_outputs(result, args)
    clusters = ", ".join(f"{unit} {outcome.n_clusters}" for unit, outcome in result.spray.items())
    print(f"SpRAy clusters    {clusters}")
    print("\nTemporal prototypes (TP Table 1)")
    columns = result.table.columns
    rows = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in result.table.to_rows()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    for line in [list(columns), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    print(f"\nwrote {args.out / 'statistics.csv'}, prototypes.csv, strips/, clusters/ and result.npz")
    return 0


COMMANDS: list[Command] = [
    Command("gui", "the desktop app: study setup and eye-tracked labeling (RBDM §5.3.1)", _add_gui, cmd_gui),
    Command(
        "demo",
        "gaze vs. saliency and the three masks on synthetic faces (RBDM §5.3.2, §5.4)",
        *_lazy_command("demo", module="demo"),
    ),
    Command(
        "compare",
        "a recorded study: annotators' gaze vs. the model's saliency, Table 1 and Figure 7 (RBDM §5.3.2)",
        *_lazy_command("compare", module="compare"),
    ),
    Command(
        "geometry",
        "visual span and heatmap Gaussian for a screen (RBDM §5.3.2)",
        _add_geometry,
        cmd_geometry,
    ),
    Command("train-trainer", "train a Trainer model (RBDM §5.1)", *_lazy_command("train_trainer")),
    Command(
        "import-trainer",
        "any Keras emotion model (.keras, .h5) as a Trainer: flattened, scaling folded, labels mapped",
        *_lazy_command("import_trainer", module="commands_import"),
    ),
    Command("saliency", "relevance maps of a Trainer on a dataset (RBDM §5.2)", *_lazy_command("saliency")),
    Command("mask", "write a masked copy of a dataset (RBDM §5.4, §5.5)", *_lazy_command("mask")),
    Command(
        "train-trainee",
        "train a Trainee on masked images, optionally switching (RBDM §5.5)",
        *_lazy_command("train_trainee"),
    ),
    Command(
        "experiment",
        "the seven Trainee variants: results table and learning curves (RBDM §6)",
        *_lazy_command("experiment"),
    ),
    Command(
        "evaluate",
        "any model on any split: accuracy, macro-F1, per-class F1, confusion matrix, CSV",
        *_lazy_command("evaluate"),
    ),
    Command(
        "prototypes",
        "temporal prototypes of an action unit model on sequences: strips and Table 1 (TP §3.2-3.5)",
        _add_prototypes,
        cmd_prototypes,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="rbdm", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(child)
        child.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rbdm``; returns the process exit status."""
    from analysis.errors import AnalysisError
    from tracking.errors import TrackingError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args))
    except (ValueError, OSError, AnalysisError, TrackingError) as err:
        print(f"rbdm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
