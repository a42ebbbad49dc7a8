"""Publish a profile's finished runs as the project's reference runs.

    python scripts/publish_reference.py ~/ref/cpu_all_data

copies the completed runs of that reports folder (``<folder>/runs/<variant>/seed<N>/``) to
``reports/reference/<profile>/`` without checkpoints, notebooks or absolute paths, and writes
the provenance README there (``cnn_lab.publish``). The reference runs themselves come from

    python -m cnn_lab pipeline --profile cpu_all_data --reports ~/ref --no-report
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_lab.publish import PublishError, publish
from cnn_lab.data import project_root
from cnn_lab.runio import WriteError

COMMAND = "python -m cnn_lab pipeline --profile {profile} --reports ~/ref --no-report"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="a reports folder of one profile, e.g. ~/ref/cpu_all_data")
    p.add_argument("--dst", help="where to publish (default: reports/reference/<the folder's name>)")
    args = p.parse_args(argv)
    src = Path(args.src).expanduser()
    dst = Path(args.dst) if args.dst else project_root() / "reports" / "reference" / src.name
    try:
        copies = publish(src, dst, COMMAND.format(profile=src.name))
    except (PublishError, WriteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"published {len(copies)} run(s) to {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
