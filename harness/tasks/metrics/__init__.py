"""Task metrics, implemented here in numpy/pure Python and tested against hand-computed values."""
from harness.tasks.metrics.captioning import bleu, cider_d, rouge_l, tokenize
from harness.tasks.metrics.classification import accuracy, average_precision, macro_f1, mean_average_precision

__all__ = [
    "accuracy",
    "average_precision",
    "bleu",
    "cider_d",
    "macro_f1",
    "mean_average_precision",
    "rouge_l",
    "tokenize",
]
