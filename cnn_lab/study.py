"""What the original study reported: the reference our measured numbers are set against.

These are the study's own published figures (its table), not results of ours; the report
always shows them beside the accuracies measured by our runs.
"""
from __future__ import annotations

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

# Variants added to test the study's explanations (not in its table).
EXTENSION_VARIANTS = ("cnn_densenet121_cifar_stem_adam", "cnn_resnet18_sgd_cosine_aug")

# Display names used in the report.
MODEL_LABELS = {
    "baseline": "BaselineNet",
    "resnet18": "ResNet-18",
    "se_resnet18": "SE-ResNet-18",
    "densenet121": "DenseNet-121",
    "densenet121_cifar": "DenseNet-121 (CIFAR stem)",
}
OPTIMIZER_LABELS = {"sgd": "SGD", "adam": "Adam"}

