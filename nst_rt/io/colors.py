"""Colour transfer between images, in numpy: the style images recoloured to the content's statistics before a
run (``--color-transfer``), and the result's colours set from the content after it (``--original-colors``).

Linear transfers (Gatys et al. 2017, "Controlling Perceptual Factors", section 5.1) map each style pixel p
to T (p - mu_s) + mu_c, with mu the mean colour and T chosen so that T Sigma_s T^T = Sigma_c (the 3x3 colour
covariances), which matches mean and covariance exactly:

  pca    T = U_c L_c^1/2 L_s^-1/2 U_s^T, from the eigendecompositions Sigma = U L U^T: whiten in the
         style's eigenbasis, colour in the content's
  chol   T = C_c C_s^-1, from the Cholesky factors Sigma = C C^T
  sym    T = Sigma_c^1/2 Sigma_s^-1/2, with symmetric matrix square roots

``histogram`` matches each channel's histogram (its quantiles) to the content's. The recoloured images are
clipped to [0, 1] by the caller (``transfer``), which may move the statistics where colours leave the range.
"""

from __future__ import annotations

import numpy as np

from .images import check_float_image, original_colors as keep_ycbcr, resize_to

_EPS = 1e-10  # added to covariances' diagonals, so that a flat-colour image (zero covariance) can be inverted


def statistics(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour (3,) and colour covariance (3, 3) of an (H, W, 3) image, in float64."""
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    mean = pixels.mean(axis=0)
    centred = pixels - mean
    return mean, centred.T @ centred / len(pixels)


def _eig(cov):
    values, vectors = np.linalg.eigh(cov + _EPS * np.eye(3))
    return np.maximum(values, _EPS), vectors


def _sqrt(cov, power: float):
    values, vectors = _eig(cov)
    return (vectors * values ** power) @ vectors.T


def linear_map(source_cov: np.ndarray, target_cov: np.ndarray, method: str) -> np.ndarray:
    """The 3x3 T with T source_cov T^T = target_cov, by ``method`` (pca, chol or sym)."""
    if method == "pca":
        ls, us = _eig(source_cov)
        lc, uc = _eig(target_cov)
        return (uc * np.sqrt(lc)) @ (us / np.sqrt(ls)).T
    if method == "chol":
        cs = np.linalg.cholesky(source_cov + _EPS * np.eye(3))
        cc = np.linalg.cholesky(target_cov + _EPS * np.eye(3))
        return cc @ np.linalg.inv(cs)
    if method == "sym":
        return _sqrt(target_cov, 0.5) @ _sqrt(source_cov, -0.5)
    raise ValueError(f"unknown linear colour transfer {method!r}")


def match_linear(source: np.ndarray, target: np.ndarray, method: str) -> np.ndarray:
    """``source`` (H, W, 3) with ``target``'s mean colour and colour covariance, unclipped, float64."""
    mu_s, cov_s = statistics(source)
    mu_t, cov_t = statistics(target)
    t = linear_map(cov_s, cov_t, method)
    pixels = np.asarray(source, np.float64).reshape(-1, 3)
    return ((pixels - mu_s) @ t.T + mu_t).reshape(np.shape(source))


def match_histograms(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` with each channel's histogram matched to ``target``'s: each value becomes the target's value at
    its quantile (so an 8-bit target gives an 8-bit result), float64."""
    out = np.empty(np.shape(source), np.float64)
    for c in range(3):
        values, index, counts = np.unique(np.asarray(source[..., c]).ravel(), return_inverse=True,
                                          return_counts=True)
        ref_values, ref_counts = np.unique(np.asarray(target[..., c]).ravel(), return_counts=True)
        quantiles = (np.cumsum(counts) - 0.5 * counts) / index.size  # each value's mid-quantile
        ref_cdf = np.cumsum(ref_counts) / ref_counts.sum()
        # The target's value at that quantile (its inverse CDF): the result takes only the target's values.
        picked = ref_values[np.minimum(np.searchsorted(ref_cdf, quantiles), len(ref_values) - 1)]
        out[..., c] = picked[index].reshape(out.shape[:-1])
    return out


def transfer(style: np.ndarray, content: np.ndarray, method: str) -> np.ndarray:
    """``style`` recoloured to ``content``'s colours by ``method`` (none, pca, chol, sym, histogram: Options.COLOR_TRANSFERS), float32 in [0, 1]."""
    if method == "none":
        return style
    if method == "histogram":
        out = match_histograms(style, content)
    else:
        out = match_linear(style, content, method)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


# CIE L*a*b* (D65) from sRGB, for --original-colors-mode lab.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _RGB_TO_XYZ.sum(axis=1)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    linear = np.clip(xyz @ np.linalg.inv(_RGB_TO_XYZ).T, 0.0, None)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def keep_lab_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Lightness (L*) from ``stylized``, chroma (a*, b*) from ``content`` (same size), float32 in [0, 1]."""
    lab = rgb_to_lab(content)
    lab[..., 0] = rgb_to_lab(stylized)[..., 0]
    return np.ascontiguousarray(np.clip(lab_to_rgb(lab), 0.0, 1.0), dtype=np.float32)


def original_colors(stylized: np.ndarray, content: np.ndarray, mode: str) -> np.ndarray:
    """The result ``stylized`` with the content's colours, by ``mode`` (ycbcr, lab, histogram): ycbcr keeps its
    luminance and the content's chroma, lab its L* and the content's a*, b*, histogram matches each channel's
    histogram to the content's. The content is resized to the result's size."""
    if mode == "ycbcr":
        return keep_ycbcr(stylized, content)
    stylized = check_float_image(stylized, "stylized image")
    content = check_float_image(content, "content image")
    if content.shape != stylized.shape:
        content = resize_to(content, stylized.shape[:2])
    if mode == "lab":
        return keep_lab_colors(stylized, content)
    if mode == "histogram":
        return np.ascontiguousarray(np.clip(match_histograms(stylized, content), 0, 1), dtype=np.float32)
    raise ValueError(f"unknown original-colours mode {mode!r}")
