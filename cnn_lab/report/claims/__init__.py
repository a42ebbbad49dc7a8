"""The study's claims, each checked once against the runs: one entry per claim with the study's
words, our measurement, a verdict and its reason, laid out like the study.

``registry`` holds the one list and what reads it (the 2.8 table, the 2.3 text, the summary's
tally); ``verdicts`` the verdict words and ``Claim``. The claims themselves, a module per
section of the study: ``s2_1`` (the accuracy table), ``baseline`` (2.3.1), ``resnet`` (2.3.2),
``densenet`` (2.3.3), ``se`` (2.3.4), ``conclusion`` (§3); ``evidence`` what several of them
read. ``claim_text.method_text`` is the paragraph that says, once, how a difference is decided.
"""
from .registry import (REFERENCE_COLUMN, claim, claim_sentence, claims, claims_table, decided_by, effective_kind,
                       reference_claim, row_numbers, section_claims, tally, tally_text)
from .baseline import levelled
from .verdicts import (CONCEPT, CONFOUNDED, FACT, FAILS, HOLDS, KINDS, NOT_COUNTED, OUT_OF_SCOPE, PARTIAL,
                       REFERENCE, SCALE, SYNTHESIS, UNTESTABLE, WITHIN, Claim)

__all__ = ["levelled", "REFERENCE_COLUMN", "claim", "claim_sentence", "claims", "claims_table", "decided_by", "effective_kind",
           "reference_claim", "row_numbers", "section_claims", "tally", "tally_text", "CONCEPT", "CONFOUNDED",
           "FACT", "FAILS", "HOLDS", "KINDS", "NOT_COUNTED", "OUT_OF_SCOPE", "PARTIAL", "REFERENCE", "SCALE",
           "SYNTHESIS", "UNTESTABLE", "WITHIN", "Claim"]
