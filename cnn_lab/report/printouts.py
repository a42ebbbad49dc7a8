"""Model printouts for the appendix: ``repr(model)`` with repeated blocks folded."""
from __future__ import annotations

import re

from ..models import count_parameters, create_model


def _signature(m) -> str:
    return re.sub(r"\d+", "#", repr(m))


def folded_repr(module, indent: int = 0) -> str:
    """Like ``repr(module)`` but each run of structurally identical blocks inside a container
    shows its first block and "... (其余 N 个结构相同的模块省略)"."""
    import torch.nn as nn

    children = list(module.named_children())
    extra = module.extra_repr()
    if not children:
        return f"{module._get_name()}({extra})"
    pad = "  " * (indent + 1)
    lines = [f"{module._get_name()}(" + (extra if extra else "")]
    is_container = isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
    i = 0
    while i < len(children):
        name, child = children[i]
        j = i + 1
        if is_container and list(child.children()):
            sig = _signature(child)
            while j < len(children) and _signature(children[j][1]) == sig:
                j += 1
        lines.append(f"{pad}({name}): {folded_repr(child, indent + 1)}")
        if j - i > 1:
            lines.append(f"{pad}... (其余 {j - i - 1} 个结构相同的模块省略)")
        i = j
    lines.append("  " * indent + ")")
    return "\n".join(lines)


def model_printout(model: str) -> str:
    net = create_model(model)
    return f"{folded_repr(net)}\n\n参数量：{count_parameters(net):,}"
