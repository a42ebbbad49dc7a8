"""The verdicts a claim can get, and a claim: the study's words, our measurement, a verdict and its reason."""
from __future__ import annotations

from dataclasses import dataclass

HOLDS, FAILS, PARTIAL = "成立", "不成立", "部分成立"
SCALE, WITHIN, REFERENCE = "规模不足无法判断", "差异在误差内", "参考（设置由本项目选定）"
UNTESTABLE, CONCEPT, FACT = "无法检验", "概念有误", "事实核对"
SYNTHESIS = "综合（不另计）"  # a claim made of halves that other rows already judge on the same measurements
CONFOUNDED, OUT_OF_SCOPE = f"{UNTESTABLE}（对比有混杂）", f"{UNTESTABLE}（超出本实验范围）"
KINDS = (HOLDS, FAILS, PARTIAL, SCALE, WITHIN, UNTESTABLE, CONCEPT, "参考", FACT, SYNTHESIS)
NOT_COUNTED = ("参考", FACT, SYNTHESIS)  # rows that are not verdicts of their own: left out of the tally

@dataclass(frozen=True)
class Claim:
    id: str
    section: str  # where the study says it (e.g. "2.3.1")
    topic: str  # the subsection of this report that discusses it ("2.3.1" … "2.3.4", "3")
    study: str  # the study's words
    measured: str  # our numbers
    verdict: str  # one of KINDS, 部分成立 with its part in brackets
    reason: str

    @property
    def kind(self) -> str:
        return next(k for k in (PARTIAL, FAILS, SCALE, WITHIN, UNTESTABLE, CONCEPT, "参考", FACT, SYNTHESIS, HOLDS)
                    if self.verdict.startswith(k))
