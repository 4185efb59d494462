"""Independent float64 NumPy references for issue 16's layers (test-only).

Written from the papers' definitions and the official TFNet code, sharing no
code with keras_acts.
"""

import numpy as np


def sigmoid(z):
    z = np.asarray(z, np.float64)
    with np.errstate(over="ignore"):
        return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))),
                        np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def acon_a(x, beta):
    """x * sigmoid(beta * x)."""
    x = np.asarray(x, np.float64)
    return x * sigmoid(np.asarray(beta, np.float64) * x)


def acon_b(x, p, beta):
    """(1 - p) x sigmoid(beta (1 - p) x) + p x."""
    x = np.asarray(x, np.float64)
    p = np.asarray(p, np.float64)
    d = (1.0 - p) * x
    return d * sigmoid(np.asarray(beta, np.float64) * d) + p * x


def pad_hw(x, value):
    """NHWC padded by one on each side of H and W (PyTorch's padding=1)."""
    return np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=value)


def depthwise3x3(x, kernel, bias, stride):
    """PyTorch ``Conv2d(C, C, 3, stride, padding=1, groups=C)`` on NHWC x,
    kernel of shape (3, 3, C), bias (C,)."""
    xp = pad_hw(np.asarray(x, np.float64), 0.0)
    n, h, w, c = x.shape
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride:i * stride + 3, j * stride:j * stride + 3, :]
            out[:, i, j, :] = np.einsum("nhwc,hwc->nc", patch, kernel)
    return out + bias


def max_pool3x3_s2(x):
    """PyTorch ``MaxPool2d(3, 2, padding=1)`` on NHWC x (pads with -inf)."""
    xp = pad_hw(np.asarray(x, np.float64), -np.inf)
    n, h, w, c = x.shape
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j, :] = xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3, :].max(axis=(1, 2))
    return out


def batch_norm_torch(h, gamma, beta, moving_mean, moving_var, eps, training):
    """PyTorch BatchNorm2d forward on NHWC h: batch statistics (biased variance)
    when training, else the moving ones."""
    if training:
        mean, var = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
    else:
        mean, var = moving_mean, moving_var
    return (h - mean) / np.sqrt(var + eps) * gamma + beta


def frelu(x, kernel, bias, bn, training=False):
    """max(x, BN(dwconv3x3(x))); bn = (gamma, beta, mean, var, eps)."""
    t = batch_norm_torch(depthwise3x3(x, kernel, bias, 1), *bn, training=training)
    return np.maximum(x, t)


def acon_frelu(x, kernel, bias, bn1, bn2, stride=1, training=False):
    """Official TFNet ``Acon_FReLU``: BN2((x1 - T) sigmoid(x1 - T) + T), T = BN1(dwconv(x))."""
    x = np.asarray(x, np.float64)
    x1 = max_pool3x3_s2(x) if stride == 2 else x
    t = batch_norm_torch(depthwise3x3(x, kernel, bias, stride), *bn1, training=training)
    z = x1 - t
    return batch_norm_torch(z * sigmoid(z) + t, *bn2, training=training)


def npwlu_1d(x, left, widths, start, slopes, kl, kr):
    """N-PWLU of a 1-D array from its definition: knots B_L + cumsum(widths),
    values Y_0 + cumsum(slope * width), linear interpolation inside, outer lines."""
    x = np.asarray(x, np.float64)
    widths = np.maximum(np.asarray(widths, np.float64), 0.0)
    slopes = np.asarray(slopes, np.float64)
    knots = left + np.concatenate([[0.0], np.cumsum(widths)])
    values = start + np.concatenate([[0.0], np.cumsum(slopes * widths)])
    out = np.empty_like(x)
    with np.errstate(invalid="ignore", over="ignore"):
        for j, v in enumerate(x):
            if np.isnan(v):
                out[j] = np.nan
            elif v < knots[0]:
                out[j] = values[0] + (0.0 if kl == 0 else kl * (v - knots[0]))
            elif v >= knots[-1]:
                out[j] = values[-1] + (0.0 if kr == 0 else kr * (v - knots[-1]))
            else:
                i = np.searchsorted(knots, v, side="right") - 1
                out[j] = values[i] + slopes[i] * (v - knots[i])
    return out


def npwlu(x, left, widths, start, slopes, kl, kr, axis=-1):
    """Channel-wise ((C,) and (C, N) parameters) or layer-wise N-PWLU."""
    x = np.asarray(x, np.float64)
    widths = np.asarray(widths, np.float64)
    if widths.ndim == 1:
        return npwlu_1d(x.ravel(), float(left), widths, float(start), slopes, float(kl),
                        float(kr)).reshape(x.shape)
    xm = np.moveaxis(x, axis, -1)
    out = np.empty_like(xm)
    for c in range(widths.shape[0]):
        out[..., c] = npwlu_1d(xm[..., c].ravel(), float(left[c]), widths[c], float(start[c]),
                               slopes[c], float(kl[c]), float(kr[c])).reshape(xm[..., c].shape)
    return np.moveaxis(out, -1, axis)
