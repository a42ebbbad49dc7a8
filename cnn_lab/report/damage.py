"""The run files that failed their check on load (``Results.damaged``), said once: which file
of which run, what is wrong and what the run no longer adds to the report, in 2.1's caveats
(each file named by what it records) and in appendix B (each file by its path).
"""
from __future__ import annotations

from pathlib import Path

from .. import runio
from .load import Damage, Results
from .phrases import prose, prose_name
from .stats import summary_stats

FILE_ZH = {runio.RUN: "运行记录", runio.CONFIG: "训练配置", runio.METRICS: "逐 epoch 指标",
           runio.GRAD_NORMS: "梯度范数记录", runio.CONFUSION: "混淆矩阵", runio.PREDICTIONS: "逐图预测",
           runio.LABELS: "测试图标签"}

_PAIRED = "仍计入准确率统计，只是不参加变体间的配对检验（改用其余种子配对，无种子可配时退回不配对的检验）"
LOST_ZH = {
    runio.RUN: "不计入任何统计，因为无法确认它是否训练完成",
    runio.CONFIG: "不计入任何统计，因为无法确认它用什么设置训练",
    runio.METRICS: "不计入准确率及其区间、变体间的比较和训练曲线",
    runio.GRAD_NORMS: "不计入梯度流的分析",
    runio.CONFUSION: "不计入各类别准确率和混淆矩阵",
    runio.PREDICTIONS: _PAIRED,
    runio.LABELS: _PAIRED,
}

# runcheck.PROBLEMS in Chinese: the same kinds, the same details (no file names: 2.1 is body text)
PROBLEM_ZH = {
    "missing": "缺失",
    "unreadable": "无法读取（{reason}）",
    "empty": "是空文件",
    "cut_line": "被截断，第 {line} 行只写了一半",
    "cut_array": "被截断，数据少于文件头声明的长度",
    "syntax": "不是有效的 {format}（第 {line} 行出错）",
    "not_npy": "不是 NumPy 数组文件",
    "not_mapping": "的内容不是“名称: 值”形式的映射",
    "lacks_field": "缺少字段 {names}",
    "bad_field": "中字段 {name} 的值 {value} 不合法",
    "lacks_column": "缺少 {names} 列",
    "row_fields": "第 {line} 行有 {n} 个字段，而表头有 {expected} 个",
    "not_number": "第 {line} 行的 {column} 不是数值（{value}）",
    "out_of_range": "第 {line} 行的 {column} 为 {value}，超出允许的范围 {allowed}",
    "epoch_order": "的 epoch 编号（{epochs}）不是从 1 起依次递增",
    "epoch_rows": "有 {rows} 个 epoch 的记录，而运行记录写明完成了 {done} 个 epoch",
    "grad_epochs": "记录到第 {last} 个 epoch 为止，而运行记录写明完成了 {done} 个 epoch",
    "uneven_epochs": "第 {epoch} 个 epoch 有 {n} 行，而第 {first} 个 epoch 有 {m} 行",
    "classes": "的各行不是按顺序排列的十个类别",
    "total": "的计数合计 {total} 张，而这次运行的测试集有 {n} 张",
    "shape": "的数组形状为 {shape}（{dtype}），而 {n} 张测试图需要长度为 {n} 的 uint8 数组",
    "not_class": "含有 {value}，不是 0–9 的类别编号",
}


# In the body, settings and columns are not named by their identifiers (appendix B names them).
BODY_ZH = {"lacks_field": "缺少必需的设置", "bad_field": "中有一项设置的值不合法", "lacks_column": "缺少必需的列",
           "not_number": "第 {line} 行有一个值不是数值", "out_of_range": "第 {line} 行有一个值超出允许的范围"}


def _problem(d: Damage, body: bool = False) -> str:
    text = BODY_ZH.get(d.error.kind) if body else None
    return (text or PROBLEM_ZH[d.error.kind]).format(**d.error.details)


def _run(res: Results, d: Damage) -> str:
    return prose_name(res, d.exp_name) + (f"种子 {d.seed} " if d.seed is not None else "")


def _path(res: Results, d: Damage) -> str:
    path = d.dir / d.file
    try:
        return str(path.relative_to(res.reports_dir))
    except ValueError:
        return str(Path(path))


@prose
def damaged_note(res: Results, *, appendix: bool = False) -> str:
    """The damaged-files note ('' when every file passed): for 2.1's caveats, each file named by
    what it records, and the variants none of whose runs is left; ``appendix``: for appendix B,
    one list item per file with its path."""
    if not res.damaged:
        return ""
    if appendix:
        return "\n".join(["- 读取时未通过检查、因而没有使用的运行文件："]
                         + [f"  - `{_path(res, d)}`：{FILE_ZH[d.file]}{_problem(d)}；这次运行{LOST_ZH[d.file]}。"
                            for d in res.damaged])
    items = "；".join(f"{_run(res, d)}的{FILE_ZH[d.file]}{_problem(d, body=True)}，这次运行{LOST_ZH[d.file]}"
                     for d in res.damaged)
    text = (f"读取各次运行的文件时，有 {len(res.damaged)} 个文件未通过检查（文件路径见附录 B），相应的运行只在"
            f"不需要这些文件的统计中计入：{items}。")
    st = summary_stats(res)
    lost = [prose_name(res, e) for e in st.index[st["state"] == "damaged"]]
    if lost:
        text += f"{'、'.join(lost)}没有一次可用的运行，表 1 中标为「文件损坏」，下文按缺少结果处理。"
    return text
