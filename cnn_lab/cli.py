"""Command line: ``python -m cnn_lab {train,pipeline,bench} ...``.

Exit status: 0 done, 1 a run diverged or failed (or a file could not be written), 2 bad input or
a busy run directory / reports folder (nothing was written), 130 interrupted with Ctrl-C (resumable).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .config import PROFILE_CHOICES, ConfigError, parse_overrides
from .variant import load_config
from .runio import WriteError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                   help="scale of the run (default: the file's, else auto = full with a GPU, cpu without)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override one setting, e.g. --set epochs=3 (repeatable)")


def _cmd_train(args: argparse.Namespace) -> int:
    from .data import DataNotFoundError
    from .distributed import hand_to_torchrun, maybe_init_process_group
    from .train import train_variant

    overrides = parse_overrides(args.overrides)
    if args.out:
        overrides["out_dir"] = args.out
    cfg = load_config(args.config, profile=args.profile or _file_profile(args.config) or "auto", overrides=overrides)
    status = hand_to_torchrun(args.config, cfg)  # nproc > 1 outside torchrun: its workers train
    if status is not None:
        return status
    with maybe_init_process_group(cfg):
        try:
            records = train_variant(cfg, progress=not args.no_progress)
        except DataNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    bad = [r for r in records if r["status"] != "completed"]
    for r in bad:
        print(f"error: {r['exp_name']} seed {r['seed']}: {r['status']}: {r.get('message', '')}", file=sys.stderr)
    return 1 if bad else 0


def _file_profile(path: str | None) -> str | None:
    from .config import read_yaml

    return read_yaml(path).get("profile") if path else None


def _cmd_pipeline(args: argparse.Namespace) -> int:
    from .pipeline import run_pipeline

    return run_pipeline(profile=args.profile or "auto", only=args.only, reports_dir=args.reports,
                        overrides=parse_overrides(args.overrides), export=not args.no_export,
                        report=not args.no_report)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main
    from .data import DataNotFoundError

    try:
        return bench_main(args)
    except DataNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one variant (every seed) into <out>/<exp_name>/seed<N>/")
    p.add_argument("config", nargs="?", default=None,
                   help="a variant file, e.g. parameters/cnn_resnet18_adam.yaml (or give every setting with --set)")
    p.add_argument("--out", help="parent directory of the run directories (field out_dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, one line per epoch")
    _add_config_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("pipeline", help="run the variants through the training notebook, then build the report")
    p.add_argument("--only", nargs="+", metavar="EXP_NAME", help="only these variants (default: all in parameters/)")
    p.add_argument("--reports", default=None, help="reports folder (default: reports/)")
    p.add_argument("--no-export", action="store_true", help="skip the HTML/PDF export")
    p.add_argument("--no-report", action="store_true",
                   help="train only: no cost.csv, report or export (for pipelines run in parallel)")
    _add_config_args(p)
    p.set_defaults(func=_cmd_pipeline)

    p = sub.add_parser("bench", help="throughput of the raw step, cnn_lab's loop and the conventional recipe")
    p.add_argument("--models", nargs="+", default=None, help="models to measure (default: all four)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    p.add_argument("--reps", type=int, default=None,
                   help="timed windows per method (default: 7 for baseline, 9 for the deep models on a CPU)")
    p.add_argument("--decode", action="store_true", help="also time a first decode of the data into an empty cache")
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: the usual resolution order)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="reports/bench", help="folder for bench.json / bench.md")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="a run setting for every method, e.g. --set amp=off --set channels_last=off")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except WriteError as err:
        print(f"error: {err}; the files written before it are intact: free some space (or fix the "
              f"permission) and run the same command again to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"interrupted: {str(err) or 'stopped with Ctrl-C; run the same command again to continue'}",
              file=sys.stderr)
        return 130
