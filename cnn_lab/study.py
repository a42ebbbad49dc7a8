"""The study: its variants and models, the order every table, figure and list shows them in,
and what the original study reported (the reference our measured numbers are set against).

``STUDY_TABLE`` holds the study's own published figures (its table), not results of ours;
the report always shows them beside the accuracies measured by our runs.
"""
from __future__ import annotations

from typing import Iterable, Sequence

# exp_name -> (model, optimizer, lr, reported final test accuracy)
STUDY_TABLE: dict[str, tuple[str, str, float, float]] = {
    "cnn_baseline": ("baseline", "sgd", 0.001, 0.43),
    "cnn_baseline_adam": ("baseline", "adam", 0.001, 0.62),
    "cnn_baseline_sgd_high_lr": ("baseline", "sgd", 0.01, 0.65),
    "cnn_densenet121_adam": ("densenet121", "adam", 0.001, 0.77),
    "cnn_se_resnet18_adam": ("se_resnet18", "adam", 0.001, 0.82),
    "cnn_resnet18_adam": ("resnet18", "adam", 0.001, 0.82),
}
STUDY_VARIANTS = tuple(STUDY_TABLE)
# Where each variant's settings live (one YAML per variant, relative to the project root).
PARAMETERS_DIR = "parameters"

# Matched controls: each differs from a study variant in one thing only. The plain network is
# ResNet-18 without its shortcuts (the skip connection's controlled test); the matched
# BaselineNet trains at the deep variants' budget (deep against shallow at equal data).
PLAIN_CONTROL, MATCHED_BASELINE = "cnn_plain18_adam", "cnn_baseline_adam_matched"
CONTROL_VARIANTS = (PLAIN_CONTROL, MATCHED_BASELINE)
# Variants added to test the study's explanations (not in its table): DenseNet-121 with the
# CIFAR input layer, and ResNet-18 with the standard CIFAR recipe.
STEM_VARIANT, RECIPE_VARIANT = "cnn_densenet121_cifar_stem_adam", "cnn_resnet18_sgd_cosine_aug"
EXTENSION_VARIANTS = (STEM_VARIANT, RECIPE_VARIANT)
# Every variant of ours in its place: the study's, the controls, then the extensions (others
# follow, sorted: in_order).
VARIANT_ORDER = (*STUDY_VARIANTS, *CONTROL_VARIANTS, *EXTENSION_VARIANTS)
# What a profile trains when --only names none: every variant file, a user's own included,
# but those it leaves out. At the cpu profile's 3 epochs on 1,000 images the two extensions
# cost about as much training as the study's deep variants together and decide nothing
# (README, "Profiles"), so that profile fits 30 minutes in fp32 too; the whole-data CPU
# profile trains the study's six and the plain network, the comparisons it exists to decide,
# within its two-hour budget.
PROFILE_LEAVES_OUT = {"cpu": EXTENSION_VARIANTS, "cpu_all_data": (MATCHED_BASELINE, *EXTENSION_VARIANTS)}


def profile_set(profile: str, names: Iterable[str]) -> list[str]:
    """The variants of ``names`` that ``profile`` trains by default (PROFILE_LEAVES_OUT)."""
    left_out = PROFILE_LEAVES_OUT.get(profile, ())
    return [n for n in names if n not in left_out]


# The reference runs shipped with the project (reports/reference/<profile>/), largest scale
# first: the report sets the user's runs beside the first one present.
REFERENCE_PROFILES = ("full", "cpu_all_data")
# The study's BaselineNet variants (three optimizer settings of one model).
BASELINE_VARIANTS = tuple(v for v, row in STUDY_TABLE.items() if row[0] == "baseline")

# Display names used in the report.
MODEL_LABELS = {
    "baseline": "BaselineNet",
    "resnet18": "ResNet-18",
    "se_resnet18": "SE-ResNet-18",
    "plain18": "Plain-18",
    "resnet34": "ResNet-34",
    "plain34": "Plain-34",
    "densenet121": "DenseNet-121",
    "densenet121_cifar": "DenseNet-121 (CIFAR 输入层)",
}
OPTIMIZER_LABELS = {"sgd": "SGD", "adam": "Adam"}
# Short names of the variants whose full settings would make a long label; the report defines
# each once (2.1) and uses it everywhere after. A deep model's study variant (Adam, learning rate
# 0.001, the study's recipe for all three) goes by the model's name; BaselineNet's three do not.
SHORT_NAMES = {
    "cnn_resnet18_adam": "ResNet-18",
    "cnn_se_resnet18_adam": "SE-ResNet-18",
    "cnn_densenet121_adam": "DenseNet-121",
    "cnn_plain18_adam": "Plain-18",
    "cnn_resnet18_sgd_cosine_aug": "ResNet-18（SGD 配方）",
    "cnn_densenet121_cifar_stem_adam": "DenseNet-121（CIFAR 输入层）",
    "cnn_baseline_adam_matched": "BaselineNet（同等规模对照）",
}

# The models in their place: BaselineNet, the ResNets, the DenseNets (MODEL_LABELS' order).
MODEL_ORDER = tuple(MODEL_LABELS)
# The study's four models, in that order.
STUDY_MODELS = tuple(m for m in MODEL_ORDER if m in {row[0] for row in STUDY_TABLE.values()})


def in_order(names: Iterable[str], order: Sequence[str] = VARIANT_ORDER) -> list[str]:
    """``names`` (each once) in ``order``, then those ``order`` does not know, sorted by name."""
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))
