"""environment.yml (conda-forge) must not drift from pyproject.toml (pip)."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_agrees_with_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = dict(_split(r) for r in meta["dependencies"] + meta["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip_section = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section.update(_split(r) for r in dep["pip"])
        else:
            name, spec = _split(dep)
            conda[name] = spec
    for name, spec in pip_reqs.items():
        conda_name = CONDA_NAMES.get(name, name)
        got = conda.get(conda_name, pip_section.get(name))
        assert got is not None, f"{name} is in pyproject.toml but not in environment.yml"
        assert got == spec, f"{name}: pyproject.toml says {spec!r}, environment.yml says {got!r}"
    listed = set(conda) | set(pip_section)
    extra = listed - {CONDA_NAMES.get(n, n) for n in pip_reqs} - set(pip_reqs) - {"python", "pip"}
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {extra}"
    assert conda["python"].lstrip("=") .startswith("3.11")
