"""Classification metrics over a whole set (not per-batch averages)."""

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int = 10) -> np.ndarray:
  """Counts, rows = actual class, columns = predicted class."""
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
  return cm


def normalize_rows(cm: np.ndarray) -> np.ndarray:
  totals = cm.sum(axis=1, keepdims=True)
  return np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)


def precision_recall_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
  """Per-class precision, recall and F1 (0 where undefined), and their macro means."""
  tp = np.diag(cm).astype(float)
  predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
  precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
  recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
  denominator = precision + recall
  f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp),
                 where=denominator > 0)
  return dict(precision=precision, recall=recall, f1=f1,
              macro_precision=precision.mean(), macro_recall=recall.mean(),
              macro_f1=f1.mean(), accuracy=tp.sum() / max(cm.sum(), 1))
