"""Cheap offline image features: an 8×8 colour thumbnail plus per-channel histograms (no weights needed)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def thumb_features(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 -> float N×(192 + 24): the 8×8 BOX thumbnail in [0, 1] and 8-bin channel histograms."""
    feats = []
    for im in images:
        th = np.asarray(Image.fromarray(im).resize((8, 8), Image.Resampling.BOX), np.float32).ravel() / 255.0
        hist = np.concatenate([np.histogram(im[..., c], bins=8, range=(0, 256))[0] for c in range(3)])
        feats.append(np.concatenate([th, hist / hist.sum() * 4]))
    return np.stack(feats)
