"""The ``rbdm`` command line.

Each subcommand is a small function that parses its options, calls :mod:`analysis` or
:mod:`tracking`, and writes files or prints a table. Heavy packages (Qt, TensorFlow) are imported
inside the subcommands that need them, so ``rbdm --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

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
    parser.add_argument("--angle-deg", type=float, default=5.0, help="visual angle (default: 5)")
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


def _run_geometry(args: argparse.Namespace) -> int:
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


def _add_demo(parser: argparse.ArgumentParser) -> None:
    from rbdm_gui import demo

    demo.add_arguments(parser)


def _run_demo(args: argparse.Namespace) -> int:
    from rbdm_gui import demo

    return demo.run(args)


COMMANDS: list[Command] = [
    Command(
        "demo",
        "gaze vs. saliency and the three masks on synthetic faces (RBDM §5.3.2, §5.4)",
        _add_demo,
        _run_demo,
    ),
    Command(
        "geometry",
        "visual span and heatmap Gaussian for a screen (RBDM §5.3.2)",
        _add_geometry,
        _run_geometry,
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
