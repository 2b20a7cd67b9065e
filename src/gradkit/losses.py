"""Loss modules: ``value = loss_fn(pred, target)`` computes the value and the gradient in one
fused pass and keeps the gradient; ``loss_fn.backward()`` returns dL/dpred.

reduction="mean" (default) divides by the number of elements (by the batch size for
CrossEntropyLoss), "sum" adds, "none" returns the per-element (per-row) losses, whose backward is
the gradient of their sum. PyTorch's conventions throughout.
"""
from __future__ import annotations

import numpy as np

from gradkit import _config, functional
from gradkit._validation import choice
from gradkit.backends import REDUCTIONS

__all__ = ["L1Loss", "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]


class _Loss:
    fn = ""          # the gradkit.functional / backend function
    classification = False

    def __init__(self, reduction: str = "mean"):
        self.reduction = choice(reduction, "reduction", REDUCTIONS)
        self._grad = None

    def _extra(self):
        return ()

    def __call__(self, pred, target):
        value, self._grad = getattr(functional, self.fn)(pred, target, reduction=self.reduction,
                                                         **self._kwargs())
        return value

    def _kwargs(self):
        return {}

    def _compute(self, pred, target, reduction=None):
        """Trusted fast path for the training loop: arrays already validated and converted."""
        value, self._grad = getattr(_config.ops(), self.fn)(
            pred, target, reduction or self.reduction, *self._extra())
        return value

    def backward(self) -> np.ndarray:
        """dL/dpred of the last call (for reduction="none": of the sum of the losses)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss")
        return self._grad

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class L1Loss(_Loss):
    """Mean absolute error ``|pred - target|``."""

    fn = "l1_loss"


class MSELoss(_Loss):
    """Mean squared error ``(pred - target)²``; ``half=True`` is the course's ``1/(2m)`` form."""

    fn = "mse_loss"

    def __init__(self, reduction: str = "mean", half: bool = False):
        super().__init__(reduction)
        if not isinstance(half, (bool, np.bool_)):
            raise TypeError(f"half must be a bool, got {type(half).__name__}")
        self.half = bool(half)

    def _kwargs(self):
        return {"half": self.half}

    def _extra(self):
        return (self.half,)

    def __repr__(self):
        return f"MSELoss(reduction={self.reduction!r}, half={self.half})"


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities: ``-(y log p + (1 - y) log(1 - p))``."""

    fn = "bce_loss"
    classification = True


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw scores z (sigmoid folded in, stable for any z)."""

    fn = "bce_with_logits_loss"
    classification = True


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (batch, classes) with integer labels (batch,)."""

    fn = "cross_entropy_loss"
    classification = True

    def __call__(self, pred, target):
        value, self._grad = functional.cross_entropy_loss(pred, target, reduction=self.reduction)
        return value
