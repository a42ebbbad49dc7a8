"""The reference runs as the report shows them: where they came from (one line), each variant's
reference accuracy for table 1, and the scope note on page 1 that says what the user's own
runs can decide and where the reference comes in.

The reference runs are loaded beside the user's (``load.load_reference``) and never mixed into
their numbers: every number taken from them is marked 参考运行.
"""
from __future__ import annotations

import pandas as pd

from .labels import pct
from .load import FULL_TRAIN, Results
from .stats import summary_stats

REFERENCE_ZH = "参考运行"
REFERENCE_HEADER = f"{REFERENCE_ZH}（95% 区间）"  # table 1's column


def provenance(ref: Results) -> dict:
    """What identifies the reference runs: profile, CPU, commit, dates, wall time, scale."""
    done = ref.runs[ref.runs["status"] == "completed"]
    dates = sorted({str(x)[:10] for x in pd.concat([done["started"], done["finished"]]).dropna()})
    commits = sorted({str(c)[:7] for c in done["git_commit"].dropna()})
    deep = (done["model"] != "baseline") | (done["budget"] == "deep")
    return {"profile": ref.profile, "cpu": "、".join(sorted(set(done["cpu_model"].dropna()))) or "未记录",
            "commit": "、".join(commits) or "未记录", "dates": dates,
            "hours": float(done["train_seconds"].astype(float).sum()) / 3600,
            "train": sorted({int(x or FULL_TRAIN) for x in done["train_size"]}),
            "epochs": {family: sorted({int(x) for x in done.loc[mask, "epochs"]})
                       for family, mask in (("BaselineNet", ~deep), ("深层网络", deep)) if mask.any()},
            "variants": int(done["exp_name"].nunique())}


def provenance_line(res: Results) -> str:
    """One line naming the reference runs, or saying that there are none."""
    if res.reference is None:
        return res.reference_note
    p = provenance(res.reference)
    when = p["dates"][0] if len(p["dates"]) == 1 else f"{p['dates'][0]} 至 {p['dates'][-1]}" if p["dates"] else "日期未记录"
    return (f"{REFERENCE_ZH}：本项目随附的 {p['variants']} 个变体，"
            f"每个变体在 CPU 上用 {'、'.join(f'{n:,}' for n in p['train'])} 张训练图训练（"
            + "，".join(f"{k}{' ' if k[-1].isascii() else ''}各 {'、'.join(map(str, v))} 个 epoch"
                       for k, v in p["epochs"].items()) + "），"
            f"在 {p['cpu']} 上运行（{when}，代码提交 {p['commit']}，训练共 {p['hours']:.1f} 小时）。")


def reference_column(res: Results, variants) -> list[str]:
    """Table 1's reference cell of each variant: its mean accuracy and 95% interval, or —."""
    if res.reference is None:
        return ["—"] * len(variants)
    st = summary_stats(res.reference)
    out = []
    for exp in variants:
        if exp not in st.index or st.loc[exp, "state"] != "completed":
            out.append("—")
            continue
        r = st.loc[exp]
        out.append(f"{pct(r['mean'], 2)}（{r['low'] * 100:.1f}–{r['high'] * 100:.1f}）")
    return out


def own_scale(res: Results) -> dict:
    """The user's own runs: does every deep variant train on all data, with how many seeds."""
    st = summary_stats(res)
    done = st[st["state"] == "completed"]
    deep = done[done["model"] != "baseline"]
    return {"deep_full": bool(len(deep)) and bool((deep["train_size"].isin([0, FULL_TRAIN])).all()),
            "deep_train": sorted({int(x or FULL_TRAIN) for x in deep["train_size"]}),
            "deep_epochs": sorted({int(x) for x in deep["epochs"]}),
            "deep_seeds": sorted({int(x) for x in deep["n"]}), "any": bool(len(done))}


def scope_note(res: Results) -> str:
    """Page 1, before 1.1: what these runs can decide, what they cannot, where the reference comes in."""
    s = own_scale(res)
    if not s["any"]:
        return ""
    if s["deep_full"]:
        can = ("本次运行的所有变体都用完整训练集训练，原报告关于各架构之间高低的说法由本次运行自己判断"
               + (f"；{REFERENCE_ZH}只作为表 1 与 2.8 节中的对照列。" if res.reference is not None else "。"))
        return "> **本报告的范围**：" + can
    n = "、".join(f"{x:,}" for x in s["deep_train"])
    seeds = "、".join(map(str, s["deep_seeds"]))
    lines = [f"BaselineNet 的优化器与学习率比较用完整训练集，本次运行可以自己判断；深层网络只用 {n} 张训练图、"
             f"每个变体 {seeds} 个种子训练，只能比较训练初期，包括同等数据下的深浅对比和去掉跳跃连接的对照，"
             "判断不了训练完成后的准确率与架构之间的高低。"]
    if res.reference is not None:
        r = own_scale(res.reference)
        depth = (f"，深层网络各训练 {'、'.join(map(str, r['deep_epochs']))} 个 epoch、"
                 f"{'一个种子' if r['deep_seeds'] == [1] else '、'.join(map(str, r['deep_seeds'])) + ' 个种子'}"
                 if r["any"] and r["deep_epochs"] else "")
        lines.append(f"这些问题交给随项目附带的{REFERENCE_ZH}（所有图像{depth}，见表 1 与 2.8 节），凡引用它的数字都标明「{REFERENCE_ZH}」，"
                     "不与本次运行的数字混在一起。")
    else:
        lines.append(res.reference_note)
    return "> **本报告的范围**：" + "".join(lines)
