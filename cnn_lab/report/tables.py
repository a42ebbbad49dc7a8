"""The report's tables (pandas DataFrames with Chinese column names, for display)."""
from __future__ import annotations

import html
import math
import re
from typing import Iterable, Sequence

import pandas as pd

from ..autotune import CANDIDATES
from ..precision import mode_name
from ..study import OPTIMIZER_LABELS
from .labels import (SCHEDULE_ZH, STATUS_ZH, _fmt_int, device_zh, layer_kind, mode_label, model_label, modes_of, pct, shown,
                     variant_short)
from .load import Results
from .gradients import gradient_ratios
from .claims import REFERENCE_COLUMN
from .reference import REFERENCE_HEADER, reference_column
from .network_stages import models_in, stage_rows
from .stats import multi_seed, summary_stats

_NUMBER = re.compile(r"^[+\-−]?[\d,]*\.?\d+(e[+-]?\d+)?\s*(%|M|MB)?(\s*±\s*[\d.]+%?)?$|^[\d.]+ / [\d.]+$|^[\d.]+%–[\d.]+%$")


_BREAK = re.compile(r"([_.])(?=[A-Za-z])")
_WBR = r"\1<wbr>"
_CJK = "\u3400-\u9fff"
# Where a line may break. A header: at a space, after a "/" between Chinese words (训练/测试图像),
# before a full-width bracket (差值（个百分点）); nowhere inside a word. A variant's name
# ("ResNet-18 · SGD 0.1 余弦+增强"): only after its separator " · ".
HEADER_BREAKS = re.compile(rf"( +|(?<=[{_CJK}]/)(?=[{_CJK}])|(?<=\S)(?=（))")
NAME_BREAKS = re.compile(r"(?<= ·)( )")
# A short cell (a verdict such as "规模不足无法判断" or "不成立（对原报告的模型）", a setting) breaks
# as a header does; a word of it longer than SHORT_WORD characters may still break anywhere,
# so that no column is forced wider than a few characters.
SHORT_CELL, SHORT_WORD = 24, 10
NUM = ' class="num"'
_NOTE_FORMATS = {"种子": "{} {}", "本次种子数": "本次运行每个变体 {1} 个种子"}  # how a column holding one value for every row reads in the caption


# Share of the text width for the columns of the long 2.8 table (the only table that has
# them): its two prose columns get most of it, the verdict columns what a verdict needs. Left to
# the browser, the short verdicts and the quotes took as much as the prose and the table ran to
# more than five A4 pages.
COLUMN_WIDTHS = {"#": "3%", "原报告观点": "17%", "本实验测量": "30%", "结论": "10%", REFERENCE_COLUMN: "10%", "理由": "30%"}


class Table:
    """A table for the report: no index column, columns holding one value for every row moved
    into the caption, text left-aligned and numbers right-aligned. Shows as HTML in the
    notebook and the exported page, as plain text elsewhere."""

    def __init__(self, df: pd.DataFrame, caption: str = "", keep: Iterable[str] = ()):
        self.caption = caption
        keep = set(keep) | set(df.columns[:1])
        uniform = [c for c in df.columns if c not in keep and len(df) > 1 and df[c].astype(str).nunique() == 1]
        self.notes = [_NOTE_FORMATS.get(c, "{}：{}").format(c, df[c].iloc[0]) for c in uniform
                      if str(df[c].iloc[0]) != "—"]  # a column with no value for any row is left out
        self.df = df.drop(columns=uniform).reset_index(drop=True)
        self.numeric = [c for c in self.df.columns if len(self.df) and all(
            _NUMBER.match(str(v)) or str(v) == "—" for v in self.df[c])]

    def caption_text(self) -> str:
        """The caption's first sentence, the notes on the columns moved out of the table, then the
        caption's other sentences (a provenance line after them would claim the notes)."""
        head, _, rest = self.caption.partition("。")
        first = "；".join(x for x in [head, *self.notes] if x) + ("。" if head or self.notes else "")
        return first + rest

    def _repr_html_(self) -> str:
        def cell(tag: str, col: str, value) -> str:
            value = str(value)
            if tag == "th":
                return f"<th{NUM if col in self.numeric else ''}>{whole_words(value, HEADER_BREAKS)}</th>"
            if col in self.numeric:
                return f'<td class="num">{html.escape(value)}</td>'
            if col == self.df.columns[0]:  # the row's name: an identifier there is not broken, a variant only at " · "
                return f'<td class="name">{whole_words(value, NAME_BREAKS) if " · " in value else html.escape(value)}</td>'
            if len(value) <= SHORT_CELL and not _BREAK.search(value):  # a verdict, a setting: broken only where a header may be
                return f"<td>{whole_words(value, HEADER_BREAKS, longest=SHORT_WORD)}</td>"
            # identifiers in other columns (conv1.weight) may break after "_" and "."
            return f"<td>{_BREAK.sub(_WBR, html.escape(value))}</td>"

        head = "".join(cell("th", c, c) for c in self.df.columns)
        body = "".join("<tr>" + "".join(cell("td", c, v) for c, v in zip(self.df.columns, row)) + "</tr>\n"
                       for row in self.df.itertuples(index=False))
        cap = f"<caption>{html.escape(self.caption_text())}</caption>" if self.caption_text() else ""
        widths = [COLUMN_WIDTHS.get(c) for c in self.df.columns]
        cols = ("<colgroup>" + "".join(f'<col style="width: {w}">' for w in widths) + "</colgroup>"
                if all(widths) else "")
        kind = "report-table tall-rows" if cols else "report-table"  # rows taller than a page may continue on the next
        return f'<table class="{kind}">{cap}{cols}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>'

    def __repr__(self) -> str:
        text = self.df.to_string(index=False) if len(self.df.columns) else "（空表）"
        return (self.caption_text() + "\n" if self.caption_text() else "") + text


def whole_words(text: str, breaks: re.Pattern, longest: int | None = None) -> str:
    """``text`` as HTML that a line may break only at ``breaks``: each word between two break
    points is kept whole (``<span class="w">``, nowrap in the page's style), unless it is longer
    than ``longest`` characters; a break point that is not a space is marked ``<wbr>``. The text
    itself is unchanged."""
    parts = breaks.split(text)
    words, gaps = parts[::2], parts[1::2] + [""]
    return "".join((f'<span class="w">{html.escape(w)}</span>' if 1 < len(w) <= (longest or len(w)) else html.escape(w))
                   + (g if g else "<wbr>" if i < len(words) - 1 else "")
                   for i, (w, g) in enumerate(zip(words, gaps)))


def table(df: pd.DataFrame, caption: str = "", keep: Iterable[str] = ()) -> Table:
    return Table(df, caption, keep)

def _acc_cell(r: pd.Series) -> str:
    if r["state"] != "completed":
        return STATUS_ZH[r["state"]]
    s = pct(r["mean"], 2)
    if not math.isnan(r["std"]):
        s += f" ± {r['std'] * 100:.2f}%"
    extra = []
    if r["n_diverged"]:
        extra.append(f"另有 {r['n_diverged']} 个种子发散")
    if r["n_failed"]:
        extra.append(f"另有 {r['n_failed']} 个种子失败")
    return s + (f"（{'；'.join(extra)}）" if extra else "")


def _interval_cell(r: pd.Series) -> str:
    """The accuracy's 95% interval (claims.INTERVAL_METHOD says how it is computed)."""
    if r["state"] != "completed" or pd.isna(r["low"]):
        return "—"
    return f"{r['low'] * 100:.2f}%–{r['high'] * 100:.2f}%"


def summary_table(res: Results, include_extensions: bool = True) -> pd.DataFrame:
    """Table 2.1: one row per variant (index: the experiment name, not displayed), a readable
    variant name first, Chinese column names, for display."""
    st = summary_stats(res)
    if not include_extensions:
        st = st[st["in_study"]]
    out = pd.DataFrame({
        "变体": [variant_short(res, e) for e in st.index],
        ("最终准确率 (均值 ± 标准差)" if multi_seed(res) else "最终准确率"): [_acc_cell(r) for _, r in st.iterrows()],
        "95% 区间": [_interval_cell(r) for _, r in st.iterrows()],
        "本次种子数": st["n"].astype(int).values,
        "原报告准确率": [pct(a, 0) if pd.notna(a) else "—" for a in st["study_acc"]],
        # the printed accuracy minus the study's, so the columns subtract exactly
        "差值（个百分点）": [f"{shown(m) - q * 100:+.2f}".replace("-", "−") if pd.notna(d) else "—"
                        for m, q, d in zip(st["mean"], st["study_acc"], st["diff"])],
        REFERENCE_HEADER: reference_column(res, st.index),
    }, index=pd.Index(st.index, name="实验名称"))
    return out


def settings_table(res: Results) -> pd.DataFrame:
    """Per variant: the settings the runs actually used (read from their config.yaml / run.json)."""
    if not len(res.runs):
        return pd.DataFrame(columns=["变体"])
    rows = []
    for exp in res.variants():
        sub = res.runs[res.runs["exp_name"] == exp]
        r = sub.iloc[0]
        opt = OPTIMIZER_LABELS.get(r["optimizer"], r["optimizer"])
        rows.append({
            "变体": variant_short(res, exp), "epoch": int(r["epochs"]), "批大小": int(r["batch_size"]),
            "训练/测试图像": f"{_fmt_int(r['train_size'])} / {_fmt_int(r['test_size'])}",
            "优化器": f"{opt}，学习率 {r['lr']:g}" + (f"，动量 {r['momentum']:g}" if r["optimizer"] == "sgd" else ""),
            "权重衰减": f"{r['weight_decay']:g}", "学习率调度": SCHEDULE_ZH.get(r["schedule"], r["schedule"]),
            "数据增强": "随机裁剪、水平翻转" if r["augment"] else "无",
            "种子": ",".join(str(s) for s in sorted(sub["seed"])),
        })
    return pd.DataFrame(rows)


def stage_table(res: Results | None = None, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per model and stage: output shape, spatial resolution, MACs per image (computed)."""
    models = list(models) if models is not None else models_in(res)
    rows = []
    for m in models:
        for r in stage_rows(m):
            rows.append({"模型": model_label(m), "阶段": r["stage"], "输出形状": r["shape"],
                         "空间分辨率": f"{r['resolution']}×{r['resolution']}",
                         "MACs (M)": round(r["macs"] / 1e6, 2)})
    return pd.DataFrame(rows)


MEMORY_METHOD_ZH = {"peak RSS growth, fresh process": "新进程中单步训练的峰值常驻内存增量",
                    "cuda max_memory_allocated": "CUDA 分配器的峰值显存"}


def cost_table(res: Results) -> pd.DataFrame:
    """Per variant: params, MACs/image and step memory (cost.csv); training s/epoch, images/s, the
    FLOP/s they achieve and the precision they ran in (runs)."""
    rows = []
    cost = res.cost.set_index("model") if res.cost is not None else None
    for exp in res.variants():
        sub = res.runs[res.runs["exp_name"] == exp]
        m = sub.iloc[0]["model"]
        c = cost.loc[m] if cost is not None and m in cost.index else None
        rows.append({
            "变体": variant_short(res, exp),
            "参数量": f"{int(c['params'] if c is not None else sub.iloc[0]['params']):,}",
            "每图 MACs (M)": (f"{c['macs'] / 1e6:.2f}" if c['macs'] < 1e7 else f"{c['macs'] / 1e6:.1f}") if c is not None else "—",
            "单步峰值内存 (MB)": f"{c['step_memory_mb']:.1f}" if c is not None else "—",
            "每 epoch 秒数": f"{float(sub['seconds_per_epoch'].mean()):.2f}",
            "训练吞吐 (图像/秒)": f"{float(sub['images_per_s'].mean()):.1f}",
            # forward and backward (twice the forward) at 2 FLOPs per MAC, times images/s
            "实际算力 (GFLOP/s)": f"{6 * c['macs'] * float(sub['images_per_s'].mean()) / 1e9:.1f}" if c is not None else "—",
            "数值格式/布局": modes_of(sub),
            "训练图像": _fmt_int(sub.iloc[0]["train_size"]),
            "内存测量": (MEMORY_METHOD_ZH.get(c["memory_method"], c["memory_method"])
                     + f"（{device_zh(c['memory_device'])}，批大小 {int(c['memory_batch_size'])}）" if c is not None else "无"),
            "设备": ", ".join(sorted({device_zh(d) for d in sub["device"].dropna().astype(str)})),
        })
    return pd.DataFrame(rows)


def precision_table(res: Results) -> pd.DataFrame:
    """Per model: the mode its runs trained in and, where auto measured them on a CPU, the
    training-step times of every mode it chose from (ms per step, at the run's batch size)."""
    rows = []
    for m in models_in(res):
        sub = res.runs[res.runs["model"] == m]
        timed = [t for t in sub["precision_timings"] if isinstance(t, dict)]
        row = {"模型": model_label(m), "训练所用": modes_of(sub),
               "选定方式": "、".join(PRECISION_SOURCE_ZH.get(s, s) for s in sorted(set(sub["precision_source"])))}
        for a, c in CANDIDATES:  # the first run's measurement: a model's variants differ only by optimizer
            t = timed[0].get(mode_name(a, c)) if timed else None
            row[f"{mode_label(a, c)} (ms/步)"] = f"{t * 1e3:.1f}" if t is not None else "—"
        rows.append(row)
    out = pd.DataFrame(rows)
    untimed = [c for c in out.columns if c.endswith("(ms/步)") and (out[c] == "—").all()]
    return out.drop(columns=untimed)


PRECISION_SOURCE_ZH = {"measured": "auto 实测取最快", "explicit": "显式指定", "rule": "auto 按设备规则",
                       "unrecorded": "未记录（fp32 / NCHW）"}


def gradient_ratio_table(res: Results) -> pd.DataFrame:
    """gradient_ratios for display, Chinese column names."""
    gr = gradient_ratios(res)
    if not len(gr):
        return pd.DataFrame(columns=["变体"])
    return pd.DataFrame({
        "变体": [variant_short(res, e) for e in gr["exp_name"]],
        "权重层数": gr["layers"],
        "首层 / 末层": [f"{layer_kind(a)} / {layer_kind(b)}" for a, b in zip(gr["first_layer"], gr["last_layer"])],
        "早期比值 (首层/末层)": [f"{x:.3f}" for x in gr["early_ratio"]],
        "后期比值 (首层/末层)": [f"{x:.3f}" for x in gr["late_ratio"]],
        "每参数 RMS 比值 (早期 / 后期)": [f"{a:.3f} / {b:.3f}" if pd.notna(a) else "—"
                                   for a, b in zip(gr.get("early_rms", gr["early_ratio"] * math.nan),
                                                   gr.get("late_rms", gr["late_ratio"] * math.nan))],
        "早期/后期 epoch": [f"{a} / {b}" for a, b in zip(gr["early_epoch"], gr["late_epoch"])],
    })

