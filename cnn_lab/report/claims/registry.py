"""The one list of the study's claims, in the study's order, each checked once against the runs.

The comparison table (``claims_table``), the 2.3 text (``section_claims``) and the summary
(``tally``, ``claim``) all read this list, so they cannot disagree."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from ..load import Results
from ..phrases import tidy
from ..stats import cached, summary_stats
from . import baseline, conclusion, densenet, resnet, se
from .evidence import ONE_SEED_CAVEAT
from .verdicts import FACT, KINDS, NOT_COUNTED, SCALE, SYNTHESIS, UNTESTABLE, Claim


# (id, section, topic, the study's words, builder), in the study's order: one list for the table, the
# 2.3 text and the summary
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
    *baseline.ENTRIES, *resnet.ENTRIES, *densenet.ENTRIES, *se.ENTRIES, *conclusion.ENTRIES,
)


def claims(res: Results) -> list[Claim]:
    """Every claim of the study, checked once per loaded report."""
    def make():
        st = summary_stats(res)
        out = []
        for cid, section, topic, study, build in ENTRIES:
            verdict, measured, reason = build(res, st)
            out.append(Claim(cid, section, topic, study, measured, verdict, reason))
        return out
    return list(cached(res, "claims", make))


def claim(res: Results, cid: str) -> Claim:
    return next(c for c in claims(res) if c.id == cid)


def reference_claim(res: Results, c: Claim) -> Claim | None:
    """The reference runs' verdict on ``c``, where the user's own scale leaves it at 规模不足 and
    the reference decides it (None otherwise: the user's verdict stands alone)."""
    if res.reference is None or c.kind != SCALE:
        return None
    ref = claim(res.reference, c.id)
    return ref if ref.kind != SCALE else None


def effective_kind(res: Results, c: Claim) -> str:
    """The verdict a claim is counted under: the user's own, or the reference's where it decides."""
    ref = reference_claim(res, c)
    return ref.kind if ref is not None else c.kind


def section_claims(res: Results, topic: str) -> list[Claim]:
    """The claims this report discusses in subsection ``topic`` ("2.3.1" … "2.3.4", "3")."""
    return [c for c in claims(res) if c.topic == topic]


def decided_by(res: Results, here: list[Claim]) -> dict[str, int]:
    """How ``here``'s claims are decided: by the user's own runs ("own"), by the reference runs
    where the user's scale cannot ("reference"), by neither ("open": 规模不足 at both scales, or
    无法检验), and rows that are not verdicts of their own ("other": 参考, 事实核对, 综合)."""
    out = {"own": 0, "reference": 0, "open": 0, "other": 0}
    for c in here:
        kind = effective_kind(res, c)
        key = ("other" if kind in NOT_COUNTED else "open" if kind in (SCALE, UNTESTABLE)
               else "reference" if reference_claim(res, c) is not None else "own")
        out[key] += 1
    return out


REFERENCE_COLUMN = "参考运行的结论"


def claims_table(res: Results) -> pd.DataFrame:
    """与原报告对比: 原报告观点 / 本实验测量 / 结论 / 理由, one row per claim (no index to show), and
    where the user's own runs are too small to decide, the reference runs' verdict in a column of
    its own (its measurement and reason marked 参考运行 in theirs)."""
    rows = []
    for i, c in enumerate(claims(res), 1):
        ref = reference_claim(res, c)
        rows.append({"#": str(i), "原报告观点": f"（{c.section}）{c.study}",
                     "本实验测量": c.measured + (f"。参考运行：{_new_part(c.measured, ref.measured)}" if ref else ""),
                     "结论": c.verdict, REFERENCE_COLUMN: ref.verdict if ref else "—",
                     # where the reference decides, the reason given is the reference's: why the
                     # user's own scale cannot decide is said once, above the table
                     "理由": f"{REF_MARK}{ref.reason}" if ref else c.reason})
    for row in rows:  # the study's words stay as printed; ours get the report's spacing
        row["本实验测量"], row["理由"] = tidy(row["本实验测量"]), tidy(row["理由"])
    return pd.DataFrame(_said_once(rows), columns=["#", "原报告观点", "本实验测量", "结论", REFERENCE_COLUMN, "理由"])


def _new_part(own: str, ref: str) -> str:
    """The reference's measurement without the leading clauses it shares with this run's (facts of
    the architecture, such as parameter counts, said once in the cell)."""
    a, b = own.split("；"), ref.split("；")
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return "；".join(b[k:]) if k < len(b) else ref


REF_MARK = "参考运行："  # a reason that is the reference's
CAVEATS = (ONE_SEED_CAVEAT,)  # sentences of a reason that, once said in full, later rows point back to


def _said_once(rows: list[dict]) -> list[dict]:
    """Each reason and each caveat in full once: a reason the same as an earlier row's becomes
    "同第 N 行" (marked 参考运行 where it is the reference's), a caveat said in an earlier row "局限同第 N 行"."""
    first: dict[str, str] = {}
    for row in rows:
        reason = row["理由"]
        if reason in first:
            row["理由"] = f"{REF_MARK if reason.startswith(REF_MARK) else ''}同第 {first[reason]} 行。"
            continue
        first[reason] = row["#"]
        for caveat in CAVEATS:
            if caveat in reason:
                reason = reason.replace(caveat, f"局限同第 {first[caveat]} 行。") if caveat in first else reason
                first.setdefault(caveat, row["#"])
        row["理由"] = reason
    return rows


def row_numbers(res: Results, ids) -> str:
    """Where claims stand in the 2.8 table, e.g. "表 5 第 6–9、14 行" (runs of consecutive rows joined)."""
    index = {c.id: i for i, c in enumerate(claims(res), 1)}
    nums = sorted(index[i] for i in ids if i in index)
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return "表 5 第 " + "、".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs) + " 行" if runs else ""


def tally(res: Results) -> dict[str, int]:
    """Claims per kind of verdict (the reference's where it decides what the user's runs cannot),
    rows that are not verdicts (参考, 事实核对) left out."""
    counts = {k: 0 for k in KINDS if k not in NOT_COUNTED}
    for c in claims(res):
        kind = effective_kind(res, c)
        if kind not in NOT_COUNTED:
            counts[kind] += 1
    return counts


def tally_text(res: Results) -> str:
    t = tally(res)
    n_ref = sum(c.kind == "参考" for c in claims(res))
    n_fact = sum(c.kind == FACT for c in claims(res))
    n_sum = sum(c.kind == SYNTHESIS for c in claims(res))
    n_by_ref = sum(reference_claim(res, c) is not None for c in claims(res))
    left = "、".join(x for x in (f"{n_ref} 项参考" if n_ref else "", f"{n_fact} 项事实核对" if n_fact else "",
                                f"{n_sum} 项综合" if n_sum else "") if x)
    by_ref = f"，其中 {n_by_ref} 项由参考运行判定" if n_by_ref else ""
    return ("、".join(f"{k} {n} 项" for k, n in t.items() if n) + by_ref
            + (f"（另有 {left}，不计入）" if left else ""))


def claim_sentence(c: Claim) -> str:
    """How the text quotes a claim: the study's words, the verdict, the reason."""
    return f"原报告（{c.section}）：“{c.study}” —— **{c.verdict}**。{c.reason}"
