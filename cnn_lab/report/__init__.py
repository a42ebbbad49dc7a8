"""The lab report: load run directories, build tables, figures and Chinese text from them.

Everything the analysis notebook shows is computed here from a reports folder ``R``
(``R/runs/<exp_name>/seed<N>/`` and ``R/cost.csv``); the notebook only calls these
functions (``from cnn_lab import report as R``). Every sentence whose truth depends on the
data is chosen by the data: when the runs change, the wording changes with them.

Modules, by concern: ``load`` (reading the runs), ``stats`` (numbers and verdicts),
``labels`` (display names, number formats), ``tables``, ``figures``, ``text`` (the prose),
``fonts`` (the CJK font, shared with the export).
"""
from __future__ import annotations

from .figures import (CURVE_GROUPS, confusion_figure, gradient_flow_figure, per_class_figure, training_curves,
                      variant_curves)
from .fonts import cjk_font_path, setup_plotting
from .labels import ACC_NOTE, CLASS_LABELS, STATUS_ZH, model_label, pct, pp, variant_label
from .load import FULL_TEST, FULL_TRAIN, Results, load_results, load_runs
from .claims import (INTERVAL_METHOD, METHOD, Claim, claim, claim_sentence, claims, claims_table, section_claims,
                     tally, tally_text)
from .gradients import gradient_flow, gradient_ratios, layer_profile, ratio_row, vanishing
from .stats import (ALPHA, PLATEAU_PP, _last_block_resolution, accuracy_interval, best_variant, compare, models_in,
                    per_class_accuracy, reference_variant, stage_rows, stage_summary, study_scale, summary_stats)
from .tables import cost_table, gradient_ratio_table, settings_table, stage_table, summary_table
from .text import (analysis_markdown, architecture_markdown, comparison_markdown, conclusion_markdown,
                   claims_markdown, folded_repr, gradient_markdown, model_printout, overview_markdown, plateau_markdown,
                   profile_banner, seeds_markdown, settings_text)

study_comparison = claims_table  # the notebook's name for the 与原报告对比 table

__all__ = [
    "setup_plotting", "cjk_font_path", "Results", "load_results", "load_runs",
    "summary_stats", "summary_table", "settings_table", "settings_text", "profile_banner",
    "stage_table", "stage_summary", "stage_rows", "models_in", "model_label", "variant_label", "pct", "pp",
    "cost_table", "gradient_ratios", "gradient_ratio_table", "reference_variant", "vanishing", "gradient_flow",
    "layer_profile", "ratio_row", "accuracy_interval", "claims", "claim", "claims_table", "section_claims", "tally",
    "tally_text", "claim_sentence", "claims_markdown", "Claim", "METHOD", "INTERVAL_METHOD", "ALPHA",
    "training_curves", "variant_curves", "gradient_flow_figure", "per_class_accuracy", "per_class_figure",
    "best_variant", "confusion_figure", "folded_repr", "model_printout", "overview_markdown",
    "architecture_markdown", "analysis_markdown", "plateau_markdown", "gradient_markdown", "seeds_markdown",
    "study_comparison", "study_scale", "comparison_markdown", "conclusion_markdown", "compare",
    "ACC_NOTE", "CLASS_LABELS", "STATUS_ZH", "CURVE_GROUPS", "FULL_TRAIN", "FULL_TEST", "PLATEAU_PP",
]
