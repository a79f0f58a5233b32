r"""Gaussian CDF building blocks for the exact probit probabilities (no input validation here).

* `bvn_cdf(h, k, r)`: Phi_2(h, k; r) = P(X <= h, Y <= k) for standard normals with
  correlation r. Genz's BVND (Drezner & Wesolowsky 1989 with Genz's high-correlation
  expansion), here with a 20-point Gauss-Legendre rule everywhere: about 1e-15 absolute in
  float64. Closed-form derivatives through `jax.custom_jvp`:
  dPhi_2/dh = phi(h) Phi((k - r h)/sqrt(1 - r^2)),  dPhi_2/dr = phi_2(h, k; r).
* `tvn_cdf(h, r12, r13, r23)`: Phi_3 by Plackett's reduction as in Genz's TVTL: keep the
  largest correlation r23, Phi_3 = Phi(h1) Phi_2(h2, h3; r23) + (1/2pi) int_0^1 f(x) dx, where
  r12(x) = sin(x asin r12), r13(x) = sin(x asin r13) and f collects
  asin(r_1j) cos(.) dPhi_3/dr_1j = asin(r_1j) exp(-q_1j/2) Phi(conditional) (the 1/cos of the
  bivariate density cancels). Fixed Gauss-Legendre nodes, so it is a smooth JAX function.
  Closed-form derivatives (`jax.custom_jvp`): dPhi_3/dh_i = phi(h_i) Phi_2(conditional),
  dPhi_3/dr_ij = phi_2(h_i, h_j; r_ij) Phi(conditional) (Plackett 1954; Genz & Bretz 2009).
* `sov_log_cdf(b, cov, points)`: Genz's separation-of-variables (GHK) estimate of
  log P(Z <= b), Z ~ N(0, cov), with Genz-Bretz variable reordering and fixed, randomly
  shifted rank-1 lattice points (one estimate per shift), computed in log space.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtr, ndtri

__all__ = ["bvn_cdf", "tvn_cdf", "sov_log_cdf", "lattice_points", "gauss_legendre01"]

_TWO_PI = 2.0 * math.pi
_LOG_SQRT_2PI = 0.5 * math.log(_TWO_PI)
_POW = 2
H_MAX = 40.0  # |h| beyond this: Phi(h) is 0 or 1 in float64 and the gradient underflows


def _tiny(dtype) -> float:
    return float(jnp.finfo(dtype).tiny)


def _phi(x):
    return jnp.exp(-0.5 * x * x - _LOG_SQRT_2PI)


def _expand(nodes, ndim: int):
    """Reshape a 1-d node table to (1, ..., 1, n) so it broadcasts without rank promotion."""
    return nodes.reshape((1,) * ndim + (-1,))


@functools.cache
def gauss_legendre01(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n-point Gauss-Legendre nodes and weights on [0, 1] (weights sum to 1)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0


# ---------------------------------------------------------------- bivariate
def _bvn_upper(h, k, r):
    """Genz's BVND: P(X > h, Y > k), corr r; h, k, r of one shape (no custom derivative)."""
    dtype = h.dtype
    x01, w01 = gauss_legendre01(20)
    nd = h.ndim
    x = _expand(jnp.asarray(x01, dtype), nd)
    w = _expand(jnp.asarray(w01, dtype), nd)
    hk = h * k
    # |r| < 0.925: Phi(-h)Phi(-k) + 1/2pi int_0^asin r exp(-(h^2+k^2-2hk sin t)/(2cos^2 t)) dt
    asr = jnp.arcsin(jnp.clip(r, -1.0, 1.0))
    sn = jnp.sin(asr[..., None] * x)
    hs = 0.5 * (h * h + k * k)
    expo = (sn * hk[..., None] - hs[..., None]) / ((1.0 - sn) * (1.0 + sn))
    low = asr / _TWO_PI * jnp.sum(w * jnp.exp(expo), axis=-1) + ndtr(-h) * ndtr(-k)
    # |r| >= 0.925: Genz's expansion around |r| = 1
    kk = jnp.where(r < 0, -k, k)
    hk2 = h * kk
    as_ = (1.0 - r) * (1.0 + r)
    as_ok = as_ > 0
    as_s = jnp.where(as_ok, as_, 1.0)
    a = jnp.sqrt(as_s)
    bs = (h - kk) ** 2
    c = (4.0 - hk2) / 8.0
    d = (12.0 - hk2) / 16.0
    t0 = (
        a
        * jnp.exp(-0.5 * (bs / as_s + hk2))
        * (1.0 - c * (bs - as_s) * (1.0 - d * bs / 5.0) / 3.0 + c * d * as_s * as_s / 5.0)
    )
    b = jnp.sqrt(bs)
    hk_ok = hk2 > -160.0
    t1 = jnp.where(
        hk_ok,
        jnp.exp(-0.5 * jnp.where(hk_ok, hk2, 0.0))
        * math.sqrt(_TWO_PI)
        * ndtr(-b / a)
        * b
        * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0),
        0.0,
    )
    xs = as_s[..., None] * x * x
    rs = jnp.sqrt(1.0 - xs)
    bsx, hkx = bs[..., None], hk2[..., None]
    cx, dx = c[..., None], d[..., None]
    term = jnp.exp(-bsx / (2.0 * xs) - hkx / (1.0 + rs)) / rs - jnp.exp(-0.5 * (bsx / xs + hkx)) * (
        1.0 + cx * xs * (1.0 + dx * xs)
    )
    t2 = a * jnp.sum(w * term, axis=-1)
    core = jnp.where(as_ok, -(t0 - t1 + t2) / _TWO_PI, 0.0)
    pos = core + ndtr(-jnp.maximum(h, kk))
    neg_extra = jnp.where(kk > h, jnp.where(h < 0, ndtr(kk) - ndtr(h), ndtr(-h) - ndtr(-kk)), 0.0)
    high = jnp.where(r > 0, pos, -core + neg_extra)
    return jnp.clip(jnp.where(jnp.abs(r) < 0.925, low, high), 0.0, 1.0)


@jax.custom_jvp
def bvn_cdf(h, k, r):
    """Phi_2(h, k; r) = P(X <= h, Y <= k); h, k, r broadcast to one shape, |r| <= 1."""
    h, k, r = jnp.broadcast_arrays(h, k, r)
    h = jnp.clip(h, -H_MAX, H_MAX)
    k = jnp.clip(k, -H_MAX, H_MAX)
    return _bvn_upper(-h, -k, jnp.clip(r, -1.0, 1.0))


@bvn_cdf.defjvp
def _bvn_cdf_jvp(primals, tangents):
    h, k, r = (jnp.asarray(p) for p in primals)
    dh, dk, dr = tangents
    p = bvn_cdf(h, k, r)
    h, k, r = jnp.broadcast_arrays(h, k, r)
    rc = jnp.clip(r, -1.0, 1.0)
    om = jnp.maximum((1.0 - rc) * (1.0 + rc), _tiny(p.dtype) ** 0.5)
    s = jnp.sqrt(om)
    g_h = _phi(h) * ndtr((k - rc * h) / s)
    g_k = _phi(k) * ndtr((h - rc * k) / s)
    q = jnp.minimum((h - rc * k) ** 2 / om + k * k, 1e4)
    g_r = jnp.exp(-0.5 * q) / (_TWO_PI * s)
    return p, g_h * dh + g_k * dk + g_r * dr


# ---------------------------------------------------------------- trivariate
def _plackett_integrand(ba, bb, bc, ra, rb, r, rr, tiny):
    """exp(-q/2) Phi(t): q the Mahalanobis form of (ba, bb) under corr r (rr = 1 - r^2),
    t the standardised bc given the other two (Genz's PNTGND)."""
    rr = jnp.maximum(rr, tiny)
    dt = rr * (rr - (ra - rb) ** 2 - 2.0 * ra * rb * (1.0 - r))
    bt = (bc * rr + ba * (r * rb - ra) + bb * (r * ra - rb)) / jnp.sqrt(jnp.maximum(dt, tiny))
    ft = (ba - r * bb) ** 2 / rr + bb * bb
    return jnp.exp(-0.5 * jnp.minimum(ft, 1e4)) * ndtr(bt)


def _tvn_quadrature(h1, h2, h3, r12, r13, r23, n_nodes: int, return_error: bool):
    """Plackett's reduction with fixed Gauss-Legendre nodes (module docstring)."""
    a12, a13, a23 = jnp.abs(r12), jnp.abs(r13), jnp.abs(r23)
    p23 = (a23 >= a12) & (a23 >= a13)
    p13 = (~p23) & (a13 >= a12)
    sel = lambda x23, x13, x12: jnp.where(p23, x23, jnp.where(p13, x13, x12))
    H1, H2, H3 = sel(h1, h2, h3), sel(h2, h1, h1), sel(h3, h3, h2)
    R12, R13, R23 = sel(r12, r12, r13), sel(r13, r23, r23), sel(r23, r13, r12)
    H1, H2, H3 = (jnp.clip(v, -H_MAX, H_MAX) for v in (H1, H2, H3))
    R12, R13, R23 = (jnp.clip(v, -1.0, 1.0) for v in (R12, R13, R23))
    base = ndtr(H1) * bvn_cdf(H2, H3, R23)
    ra, rb = jnp.arcsin(R12), jnp.arcsin(R13)
    tiny = _tiny(H1.dtype) ** 0.5
    ex = lambda v: v[..., None]

    def integral(n):
        x01, w01 = gauss_legendre01(n)
        # x = 1 - (1 - s)^2 clusters nodes at x = 1, where a near-singular R makes the
        # conditional Phi() steep (its variance -> 0 at the end of the path)
        x01, w01 = 1.0 - (1.0 - x01) ** _POW, w01 * _POW * (1.0 - x01) ** (_POW - 1)
        x = _expand(jnp.asarray(x01, H1.dtype), H1.ndim)
        w = _expand(jnp.asarray(w01, H1.dtype), H1.ndim)
        s12, c12 = jnp.sin(ex(ra) * x), jnp.cos(ex(ra) * x) ** 2
        s13, c13 = jnp.sin(ex(rb) * x), jnp.cos(ex(rb) * x) ** 2
        fa = _plackett_integrand(ex(H1), ex(H2), ex(H3), s13, ex(R23), s12, c12, tiny)
        fb = _plackett_integrand(ex(H1), ex(H3), ex(H2), s12, ex(R23), s13, c13, tiny)
        return jnp.sum(w * (ex(ra) * fa + ex(rb) * fb), axis=-1) / _TWO_PI

    full = integral(n_nodes)
    p = jnp.clip(base + full, 0.0, 1.0)
    if not return_error:
        return p
    return p, jnp.abs(full - integral(max(n_nodes // 2, 2)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(6,))
def _tvn_value(h1, h2, h3, r12, r13, r23, n_nodes):
    return _tvn_quadrature(h1, h2, h3, r12, r13, r23, n_nodes, False)


@_tvn_value.defjvp
def _tvn_value_jvp(n_nodes, primals, tangents):
    """Plackett (1954) / Genz & Bretz (2009, section 2.2) for a correlation matrix R:
    dPhi_3/dh_i = phi(h_i) Phi_2(h_{-i} | X_i = h_i) and
    dPhi_3/dr_ij = d2Phi_3/dh_i dh_j = phi_2(h_i, h_j; r_ij) Phi(h_k | X_i = h_i, X_j = h_j),
    so no derivative of the quadrature is ever formed."""
    h = [jnp.asarray(v) for v in primals[:3]]
    p = _tvn_value(*primals, n_nodes)
    dtype = p.dtype
    h = [jnp.clip(v, -H_MAX, H_MAX) for v in h]
    r = {}
    r[0, 1], r[0, 2], r[1, 2] = (jnp.clip(jnp.asarray(v), -1.0, 1.0) for v in primals[3:])
    for i, j in list(r):
        r[j, i] = r[i, j]
    tiny = _tiny(dtype) ** 0.5
    om = {key: jnp.maximum((1.0 - v) * (1.0 + v), tiny) for key, v in r.items()}
    # first derivatives: one batched bivariate CDF for the three conditionals
    hs, ks, rs = [], [], []
    for i, (j, k) in ((0, (1, 2)), (1, (0, 2)), (2, (0, 1))):
        sj, sk = jnp.sqrt(om[i, j]), jnp.sqrt(om[i, k])
        hs.append((h[j] - r[i, j] * h[i]) / sj)
        ks.append((h[k] - r[i, k] * h[i]) / sk)
        rs.append((r[j, k] - r[i, j] * r[i, k]) / (sj * sk))
    st = lambda xs: jnp.stack(jnp.broadcast_arrays(*xs), axis=-1)
    cond2 = bvn_cdf(st(hs), st(ks), jnp.clip(st(rs), -1.0, 1.0))
    # second-order terms: phi_2(h_i, h_j; r_ij) Phi(conditional h_k)
    det = 1.0 - r[0, 1] ** 2 - r[0, 2] ** 2 - r[1, 2] ** 2 + 2.0 * r[0, 1] * r[0, 2] * r[1, 2]
    g_r = []
    for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
        o = om[i, j]
        q = (h[i] * h[i] - 2.0 * r[i, j] * h[i] * h[j] + h[j] * h[j]) / o
        dens = jnp.exp(-0.5 * jnp.minimum(q, 1e4)) / (_TWO_PI * jnp.sqrt(o))
        mean = ((r[i, k] - r[i, j] * r[j, k]) * h[i] + (r[j, k] - r[i, j] * r[i, k]) * h[j]) / o
        sd = jnp.sqrt(jnp.maximum(det / o, tiny))
        g_r.append(dens * ndtr((h[k] - mean) / sd))
    out = sum(_phi(h[i]) * cond2[..., i] * tangents[i] for i in range(3))
    out = out + sum(g * dr for g, dr in zip(g_r, tangents[3:], strict=True))
    return p, jnp.broadcast_to(out, p.shape).astype(dtype)


def tvn_cdf(h1, h2, h3, r12, r13, r23, *, n_nodes: int = 24, return_error: bool = False):
    """Phi_3(h; R) = P(X_i <= h_i, i = 1..3); all inputs of one shape. Optionally also
    |I_n - I_{n/2}|, the difference to the half-order rule (a pessimistic error estimate).

    Derivatives in closed form (`jax.custom_jvp`, Plackett 1954 / Genz & Bretz 2009
    section 2.2): dPhi_3/dh_i = phi(h_i) Phi_2(conditional), dPhi_3/dr_ij = phi_2(h_i, h_j;
    r_ij) Phi(conditional); the quadrature itself is never differentiated."""
    p = _tvn_value(h1, h2, h3, r12, r13, r23, n_nodes)
    if not return_error:
        return p
    _, err = _tvn_quadrature(h1, h2, h3, r12, r13, r23, n_nodes, True)
    return p, jax.lax.stop_gradient(err)


# ---------------------------------------------------------------- separation of variables
@functools.cache
def _korobov_vector(n: int, dim: int) -> np.ndarray:
    """Korobov generating vector (1, a, a^2, ...) mod n minimising the P_2 criterion."""
    if dim == 0:
        return np.zeros(0, dtype=np.int64)
    k = np.arange(n, dtype=np.int64)
    best, best_a = np.inf, 1
    for a in range(1, max(2, n // 2)):
        z = np.array([pow(a, j, n) for j in range(dim)], dtype=np.int64)
        if dim > 1 and len(set(z.tolist())) < dim:
            continue
        frac = ((k[:, None] * z[None, :]) % n) / n
        crit = np.mean(np.prod(1.0 + 2.0 * math.pi**2 * (frac**2 - frac + 1.0 / 6.0), axis=1))
        if crit < best:
            best, best_a = crit, a
    return np.array([pow(best_a, j, n) for j in range(dim)], dtype=np.int64)


@functools.cache
def lattice_points(n_points: int, n_shifts: int, dim: int, seed: int = 0) -> np.ndarray:
    """(n_shifts, n_points, dim) randomly shifted rank-1 lattice points in (0, 1), after the
    baker's (tent) transform 1 - |2x - 1|; fixed seed, so estimates are deterministic."""
    z = _korobov_vector(n_points, dim)
    base = (np.arange(n_points)[:, None] * z[None, :] % n_points) / n_points
    shifts = np.random.default_rng(seed).random((n_shifts, 1, dim))
    x = (base[None] + shifts) % 1.0
    return np.clip(1.0 - np.abs(2.0 * x - 1.0), 1e-12, 1.0 - 1e-12)


def _ndtri_exp(lp):
    """x with log Phi(x) = lp (lp <= 0), also for Phi(x) below the float range (Newton)."""
    small = lp < -20.0
    dtype = lp.dtype
    eps = float(jnp.finfo(dtype).eps)
    direct = ndtri(jnp.clip(jnp.exp(jnp.where(small, -1.0, lp)), _tiny(dtype), 1.0 - eps))
    ls = jnp.where(small, lp, -30.0)
    x = -jnp.sqrt(-2.0 * ls - jnp.log(-2.0 * ls) - math.log(_TWO_PI))
    for _ in range(4):
        lphi = log_ndtr(x)
        x = x - (lphi - ls) / jnp.exp(-0.5 * x * x - _LOG_SQRT_2PI - lphi)
    return jnp.where(small, x, direct)


def _pivoted_cholesky(b, cov):
    """Single problem: Genz-Bretz reordering (most restrictive variable first, using the
    truncated means of the earlier ones) with the Cholesky factor built along the way.

    A `lax.fori_loop` over the m variables (columns >= i of L and entries >= i of y are still
    zero at step i, so full-width products equal the leading-block ones)."""
    m = b.shape[0]
    tiny = _tiny(b.dtype) ** 0.5
    idx_m = jnp.arange(m)

    def step(i, carry):
        b, cov, L, y = carry
        var = jnp.diagonal(cov) - jnp.sum(L**2, axis=1)
        s = jnp.sqrt(jnp.maximum(var, tiny))
        t = jax.lax.stop_gradient((b - L @ y) / s)
        score = jnp.where(idx_m >= i, log_ndtr(jnp.clip(t, -1e4, 1e4)), jnp.inf)
        j = jnp.argmin(score)
        perm = idx_m.at[i].set(j).at[j].set(i)
        b, s, t, L, y = b[perm], s[perm], t[perm], L[perm], y[perm]
        cov = cov[perm][:, perm]
        col = (cov[:, i] - L @ L[i]) / s[i]
        col = jnp.where(idx_m > i, col, jnp.where(idx_m == i, s[i], 0.0))
        L = L.at[:, i].set(col)
        ti = jnp.clip(t[i], -1e4, 1e4)
        y = y.at[i].set(-jnp.exp(-0.5 * ti * ti - _LOG_SQRT_2PI - log_ndtr(ti)))
        return b, cov, L, y

    b, _, L, _ = jax.lax.fori_loop(0, m, step, (b, cov, jnp.zeros_like(cov), jnp.zeros_like(b)))
    return b, L


def _sov_single(b, cov, points, log_space: bool):
    """(n_shifts,) estimates of log P(Z <= b) for one problem; points (M, N, m-1).

    A `lax.fori_loop` over the first m-1 variables (the conditional draws z_j are kept in an
    (m-1, M, N) array, zero until drawn), then the last factor."""
    m = b.shape[0]
    b, L = _pivoted_cholesky(b, cov)
    eps = float(jnp.finfo(b.dtype).eps)
    tiny = _tiny(b.dtype)

    def factor(i, zs):
        acc = b[i] - jnp.tensordot(L[i, : m - 1], zs, axes=1)
        return log_ndtr(jnp.clip(acc / L[i, i], -1e4, 1e4))

    def step(i, carry):
        logp, zs = carry
        le = factor(i, zs)
        w = points[..., i]
        if log_space:
            z = _ndtri_exp(jnp.log(w) + le)
        else:
            z = ndtri(jnp.clip(w * jnp.exp(le), tiny, 1.0 - eps))
        return logp + le, zs.at[i].set(z)

    shape = points.shape[:-1]
    zs = jnp.zeros((max(m - 1, 1),) + shape, b.dtype)
    logp, zs = jax.lax.fori_loop(0, m - 1, step, (jnp.zeros(shape, b.dtype), zs))
    logp = logp + factor(m - 1, zs)
    if m == 1:
        return logp[:, 0]
    return logsumexp(logp, axis=-1) - math.log(points.shape[1])


SOV_BLOCK_ELEMENTS = 2**16  # problems x shifts x points evaluated at once (bounds memory)


def sov_log_cdf(
    b, cov, *, n_points: int = 1021, n_shifts: int = 8, log_space: bool = True, needed=None
):
    """Per-shift estimates of log P(Z <= b), Z ~ N(0, cov): b (..., m), cov (..., m, m) with
    equal batch shapes -> (..., n_shifts). Average exp() over the last axis for the estimate.

    The problems are evaluated in blocks of about `SOV_BLOCK_ELEMENTS / (n_shifts n_points)`
    under `lax.scan` (rematerialised in the backward pass), so memory does not grow with the
    number of problems. `needed` (bool, shape (...)): a block in which no problem is needed
    is skipped (`lax.cond`) and its rows are 0 (used where a closed form covers most problems).
    """
    m = b.shape[-1]
    batch = b.shape[:-1]
    pts = jnp.asarray(lattice_points(n_points, n_shifts, max(m - 1, 1)), b.dtype)
    flat_b = b.reshape((-1, m))
    flat_c = cov.reshape((-1, m, m))
    P = flat_b.shape[0]
    need = jnp.ones((P,), bool) if needed is None else jnp.reshape(needed, (P,))
    bs = int(max(1, min(P, SOV_BLOCK_ELEMENTS // (n_shifts * n_points))))
    nb = -(-P // bs)
    pad = nb * bs - P
    flat_b = jnp.concatenate([flat_b, jnp.zeros((pad, m), b.dtype)])
    flat_c = jnp.concatenate([flat_c, jnp.broadcast_to(jnp.eye(m, dtype=b.dtype), (pad, m, m))])
    need = jnp.concatenate([need, jnp.zeros((pad,), bool)])
    blocks = (flat_b.reshape(nb, bs, m), flat_c.reshape(nb, bs, m, m), need.reshape(nb, bs))

    @jax.checkpoint
    def block(bb, cc, nn):
        run = jax.vmap(lambda x, c: _sov_single(x, c, pts, log_space))
        skip = lambda x, c: jnp.zeros((bs, n_shifts), b.dtype)
        return jax.lax.cond(jnp.any(nn), run, skip, bb, cc)

    _, out = jax.lax.scan(lambda carry, blk: (carry, block(*blk)), None, blocks)
    return out.reshape(nb * bs, n_shifts)[:P].reshape(batch + (n_shifts,))
