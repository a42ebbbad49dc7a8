"""The lab report: load run directories, build tables, figures and Chinese text from them.

Everything the analysis notebook shows is computed here from a reports folder ``R``
(``R/runs/<exp_name>/seed<N>/`` and ``R/cost.csv``); the notebook only calls these
functions (``from cnn_lab import report as R``). Every sentence whose truth depends on the
data is chosen by the data: when the runs change, the wording changes with them.

Modules, by concern: ``load`` (reading the runs), ``stats`` (numbers and verdicts),
``measures`` (architecture facts, training dynamics, confusions, speed), ``labels`` and
``phrases`` (names, number formats, shared sentences), ``tables``, ``figures``, ``text``
(sections 1, 2.1–2.2, 2.4–2.8), ``analysis`` (2.3), ``closing`` (3 and the appendices),
``printouts`` (folded model printouts), ``fonts`` (the CJK font, shared with the export),
``damage`` (the note on run files that failed their check on load).
"""
from __future__ import annotations

from .analysis import (analysis_lead, analysis_markdown, baseline_section, densenet_section, resnet_section,
                       se_section)
from .closing import Folded, conclusion_markdown, environment_markdown, precision_lead, printouts, stages
from .damage import damaged_note
from .figures import (alt_text, confusion_figure, figure_image, gradient_flow_figures, per_class_figure, scale_groups,
                      seed_curves, show, training_curves, variant_colors, variant_curves)
from .fonts import MIN_FONT_PT, TEXT_WIDTH_IN, cjk_font_path, setup_plotting
from .labels import CLASS_LABELS, STATUS_ZH, model_label, pct, variant_short
from .load import FULL_TEST, FULL_TRAIN, Damage, Results, load_results, load_runs, read_runs
from .claim_text import INTERVAL_METHOD, method_text
from .claims import (Claim, claim, claim_sentence, claims, claims_table, row_numbers, section_claims, tally,
                     tally_text)
from .gradients import gradient_flow, gradient_ratios, layer_profile, ratio_row, vanishing
from .measures import confusion_facts, dynamics, model_facts
from .phrases import prose_name
from .printouts import folded_repr, model_printout
from .network_stages import _last_block_resolution, models_in, stage_rows, stage_summary
from .stats import (ALPHA, PLATEAU_PP, accuracy_interval, best_variant, compare, per_class_accuracy,
                    reference_variant, study_scale, summary_stats)
from .tables import (Table, cost_table, gradient_ratio_table, precision_table, settings_table, stage_table, summary_table,
                     table)
from .text import (architecture_markdown, claims_markdown, comparison_caption, comparison_markdown, confusion_lead,
                   cost_caption, cost_lead, cost_markdown, curves_lead, curves_markdown, gradient_caption,
                   gradient_lead, gradient_markdown, overview_markdown, per_class_lead, per_class_markdown,
                   profile_banner, scale_note, seeds_markdown, settings_caption, settings_text, summary_caption)

study_comparison = claims_table  # the notebook's name for the 与原报告对比 table

__all__ = [name for name in dir() if not name.startswith("__") and name not in ("annotations",)]
