"""Every ``python -m cnn_lab ...`` command and ``--set`` example in README.md and docs/*.md works as written.

The commands are read from the pages themselves (their code blocks and inline code), so a documented
command cannot rot. Each is parsed and its config resolved exactly as the command line
would (torchrun's own options by torchrun's parser); the short ones are also run for real
on the smoke profile with a tiny subset and temporary output folders. Long ones (the full
profile on GPUs, torchrun, a download, the whole pipeline) are only parsed and resolved.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_lab import cli
from cnn_lab.config import parse_overrides, pick_profile
from cnn_lab.variant import load_config

ROOT = Path(__file__).resolve().parents[1]
# docs/own-model.md names a user's variant (cnn_vgg11_adam) that parameters/ does not hold:
# tests/test_own_model.py runs those steps in a copy of the project with such a model.
PAGES = [ROOT / "README.md", *(p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "own-model.md")]
README = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)  # every page that documents a command
PLACEHOLDERS = {"FILE": "parameters/cnn_baseline.yaml", "<variant>": "cnn_baseline"}
TINY = ["train_size=50", "test_size=50", "epochs=1", "batch_size=50", "grad_points=1"]


def _shell_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                lines += [part.strip().rstrip("&").strip() for part in line.split("&&")]
    return lines


def _inline_spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))


def documented_commands() -> list[str]:
    cmds = [c for c in _shell_lines() + _inline_spans() if "-m cnn_lab" in c]
    for key, value in PLACEHOLDERS.items():
        cmds = [c.replace(key, value) for c in cmds]
    return list(dict.fromkeys(cmds))


def documented_sets() -> list[str]:
    """Inline ``--set k=v`` / ``--profile p --set k=v`` examples (not the FIELD=VALUE pattern)."""
    return [s for s in dict.fromkeys(_inline_spans())
            if re.fullmatch(r"(--profile \w+ )?--set [a-z_]+=\S+", s)]


def expand(argv: list[str]) -> list[list[str]]:
    """README's ``[optional]`` groups included, one command per ``a | b`` alternative."""
    text = " ".join(shlex.quote(a) if a not in ("[", "]", "|") else a for a in argv)
    alts = re.findall(r"\[([^\]]*\|[^\]]*)\]", text)
    variants = [text]
    for group in alts:
        variants = [v.replace(f"[{group}]", choice.strip(), 1) for v in variants for choice in group.split("|")]
    return [shlex.split(v.replace("[", " ").replace("]", " ")) for v in variants]


def split(command: str) -> tuple[dict[str, str], list[str], list[str]]:
    """(environment prefix, launcher tokens before ``-m cnn_lab``, cnn_lab's own argv)."""
    tokens = shlex.split(command.replace("[", " [ ").replace("]", " ] ").replace(" | ", " | "))
    env = {}
    while tokens and re.fullmatch(r"[A-Z_]+=\S*", tokens[0]):
        k, _, v = tokens.pop(0).partition("=")
        env[k] = v
    i = tokens.index("-m")
    assert tokens[i + 1] == "cnn_lab", command
    return env, tokens[:i], tokens[i + 2:]


def resolve(argv: list[str], tmp: Path):
    """What the command line does before training: parse, then resolve and validate the config
    (returned for ``train``)."""
    from cnn_lab.bench import MODELS, bench_config
    from cnn_lab.models import list_models
    from cnn_lab.pipeline import load_variants

    args = cli.build_parser().parse_args(argv)
    overrides = parse_overrides(args.overrides)
    if args.command == "train":
        config = args.config and str(ROOT / args.config)
        return load_config(config, profile=args.profile or cli._file_profile(config) or "auto", overrides=overrides)
    elif args.command == "pipeline":
        variants = load_variants(ROOT / "parameters", pick_profile(args.profile or "auto"), tmp, overrides)
        assert set(args.only or []) <= {v.name for v in variants}, args.only
    else:
        bench_config(args.batch_size, overrides)
        assert set(args.models or MODELS) <= set(list_models())


def long_running(env: dict, launcher: list[str], argv: list[str]) -> str | None:
    """Why a command is only parsed, not run here (None: it is run)."""
    text = " ".join(argv)
    if env or "torchrun" in " ".join(launcher):
        return "GPUs / torchrun"
    if "--device cuda" in text or "download=true" in text or "nproc=" in text:
        return "needs a GPU, the network or several processes"
    if argv[0] == "pipeline" and "--only" not in argv:
        return "the whole pipeline"
    if argv[0] == "bench" and "--models" not in argv:
        return "every model"
    return None


def smoke_argv(argv: list[str], tmp: Path) -> list[str]:
    """The command on the smoke profile, a tiny subset and temporary output folders."""
    out, skip = [], None
    for a in argv:
        if skip:
            out.append(skip)
            skip = None
            continue
        out.append(a)
        if a == "--profile":
            skip = "smoke"
        elif a in ("--out", "--reports"):
            skip = str(tmp / a[2:])
    own = {v.split("=")[0] for a, v in zip(argv, argv[1:]) if a == "--set"}
    if argv[0] == "bench":  # --decode times a 20 s first decode: parsed above, not repeated here
        out = [a for a in out if a != "--decode"]
        if "--out" not in argv:
            out += ["--out", str(tmp / "bench")]
        return out + ["--steps", "1", "--reps", "1"]
    if "--profile" not in argv:
        out += ["--profile", "smoke"]
    if argv[0] == "pipeline" and "--reports" not in argv:
        out += ["--reports", str(tmp / "reports")]
    if argv[0] == "train" and "--out" not in argv:
        out += ["--out", str(tmp / "out")]
    return out + [x for s in TINY if s.split("=")[0] not in own for x in ("--set", s)]


def test_readme_shows_the_commands_this_test_expects():
    cmds = documented_commands()
    kinds = {split(c)[2][0] for c in cmds}
    assert kinds == {"train", "pipeline", "bench"}
    assert any("torchrun" in c for c in cmds) and len(cmds) >= 8
    assert {"--set amp=off", "--set channels_last=off", "--set compile=true"} <= set(documented_sets())


@pytest.mark.parametrize("command", documented_commands())
def test_documented_command_parses_and_resolves(command, tmp_path):
    env, launcher, argv = split(command)
    if launcher and "torchrun" in launcher[0]:  # torchrun's own options, by torchrun's parser
        from torch.distributed.run import get_args_parser

        get_args_parser().parse_args([*launcher[1:], "-m", "cnn_lab", *argv])
    for variant in expand(argv):
        resolve(variant, tmp_path)


@pytest.mark.parametrize("example", documented_sets())
def test_documented_set_example_is_accepted(example):
    cfg = resolve(["train", "parameters/cnn_baseline.yaml", *shlex.split(example)], Path("unused"))
    field, text = re.search(r"--set ([a-z_]+)=(\S+)", example).groups()
    # the resolved field holds the value as written (off stays the word, [0,1,2] a list, true a boolean)
    assert str(getattr(cfg, field)).lower().replace(" ", "") == text.lower(), (field, getattr(cfg, field))
    if example.startswith("--profile"):
        assert cfg.profile == example.split()[1]


def runnable() -> list[tuple[str, list[str]]]:
    out = []
    for command in documented_commands():
        env, launcher, argv = split(command)
        if long_running(env, launcher, argv) is None:
            # several alternatives: run the last (e.g. --no-report, the quick one); all are parsed above
            out.append((command, expand(argv)[-1]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("command,argv", runnable(), ids=[c for c, _ in runnable()])
def test_documented_command_runs_on_smoke(command, argv, tmp_path):
    cmd = [sys.executable, "-m", "cnn_lab", *smoke_argv(argv, tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr
    if argv[0] == "bench":
        assert (tmp_path / "bench" / "bench.json").exists()
    else:
        runs = list(tmp_path.rglob("run.json"))
        assert runs and all('"status": "completed"' in p.read_text() for p in runs)


def test_every_kind_of_command_is_run_somewhere():
    assert {argv[0] for _, argv in runnable()} == {"train", "pipeline", "bench"}


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_pages_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "BENCHMARKS.md"]
    checked = 0
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target, anchor in re.findall(r"\]\(([^)#\s:]+)(?:#([^)\s]+))?\)", text):
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.name}: link to {target}, which does not exist"
            if anchor:
                headings = re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{page.name}: no heading #{anchor} in {target}"
            checked += 1
    assert checked >= 12  # README's map of docs/, and the links between the pages
