"""Independent float64 NumPy references of the papers' formulas (test-only).

Written from the papers' definitions, sharing no code with keras_acts.ops.
"""

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def softplus(x):
    return np.logaddexp(0.0, x)


def serf(x):
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * _erf(softplus(x))
    return np.where(x == -np.inf, 0.0, y)


def acon_c(x, p1, p2, beta):
    x = np.asarray(x, np.float64)
    d = (np.asarray(p1, np.float64) - np.asarray(p2, np.float64)) * x
    return d / (1.0 + np.exp(-np.asarray(beta, np.float64) * d)) + np.asarray(p2, np.float64) * x


def pwlu_1d(x, left, right, points, kl, kr):
    """PWLU of a 1-D array with scalar parameters, via np.interp inside [B_L, B_R]."""
    x = np.asarray(x, np.float64)
    points = np.asarray(points, np.float64)
    grid = np.linspace(left, right, len(points))
    with np.errstate(invalid="ignore"):
        inside = np.interp(x, grid, points)
        out = np.where(x < left, points[0] + (0.0 if kl == 0 else kl * (x - left)), inside)
        out = np.where(x > right, points[-1] + (0.0 if kr == 0 else kr * (x - right)), out)
    return np.where(np.isnan(x), np.nan, out)


def pwlu(x, left, right, points, kl, kr, axis=-1):
    """Channel-wise (params of shape (C,), points (C, N+1)) or layer-wise PWLU."""
    x = np.asarray(x, np.float64)
    points = np.asarray(points, np.float64)
    if points.ndim == 1:
        return pwlu_1d(x.ravel(), float(left), float(right), points, float(kl),
                       float(kr)).reshape(x.shape)
    xm = np.moveaxis(x, axis, -1)
    out = np.empty_like(xm)
    for c in range(points.shape[0]):
        out[..., c] = pwlu_1d(xm[..., c].ravel(), float(left[c]), float(right[c]), points[c],
                              float(kl[c]), float(kr[c])).reshape(xm[..., c].shape)
    return np.moveaxis(out, -1, axis)


def batch_norm(h, gamma, beta, mean, var, eps):
    return (h - mean) / np.sqrt(var + eps) * gamma + beta


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at float64 array x."""
    x = np.array(x, np.float64)
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f(x)
        flat[i] = old - eps
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def assert_gradients_match_numerical(grads, values, ref_fn, w, rtol, atol):
    """Each grads[i] equals the central differences of sum(ref_fn(*values) * w) in values[i]."""
    for i, grad in enumerate(grads):
        def f(v, i=i):
            vals = list(values)
            vals[i] = v
            return np.sum(ref_fn(*vals) * w)

        np.testing.assert_allclose(np.asarray(grad), numeric_grad(f, values[i]), rtol=rtol,
                                   atol=atol, err_msg=f"argument {i}")
