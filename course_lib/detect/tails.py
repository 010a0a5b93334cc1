"""Tail probabilities of heartbeat-interval distributions, as phi = -log10(tail).

Each ``*_phi`` function returns ``-log10 P(X > x)`` for a standardized variable
``X``, computed in log space so that it is finite and accurate far into the tail
(a node silent for a thousand mean intervals has a phi in the thousands, not ``inf``).
Each ``*_phi_inverse`` returns the ``x`` at which that phi is reached; the two are
inverse to within floating-point rounding.

Contracts: inputs are finite floats; results are finite, non-negative and
non-decreasing in ``x``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

LN10 = math.log(10.0)
_SQRT2 = math.sqrt(2.0)
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)
_STANDARD_NORMAL = NormalDist()

# Beyond this z, erfc(z / sqrt 2) is replaced by the asymptotic Mills-ratio series;
# below it math.erfc is accurate to a few ulps (and far from underflow, ~z = 38.5).
ASYMPTOTIC_FROM = 20.0

# Akka's PhiAccrualFailureDetector approximates the normal CDF by a logistic curve:
# Phi(y) ~= 1 / (1 + exp(-y (1.5976 + 0.070566 y^2)))  (Bowling et al. 2009,
# "A logistic approximation to the cumulative normal distribution").
LOGISTIC_A = 1.5976
LOGISTIC_B = 0.070566


def _log_normal_tail_asymptotic(z: float) -> float:
    """ln Q(z) for z >= ASYMPTOTIC_FROM, Q the standard normal upper tail.

    Q(z) = phi(z) / z * (1 - 1/z^2 + 3/z^4 - 15/z^6 + ...)   (Mills ratio,
    Abramowitz & Stegun 26.2.12).  At z >= 20 the terms fall by >= 1/133 each, so
    summing until a term drops below 1e-17 of the total is exact to double precision.
    """
    inv_z2 = 1.0 / (z * z)
    total = 1.0
    term = 1.0
    k = 1
    while True:
        term *= -(2 * k - 1) * inv_z2
        total += term
        if abs(term) < 1e-17:
            break
        k += 1
    return -0.5 * z * z - math.log(z) - _HALF_LN_2PI + math.log(total)


def normal_phi(z: float) -> float:
    """-log10 Q(z), Q(z) = P(Z > z) for a standard normal Z (Hayashibara et al. 2004).

    Exact for all finite z: ``log1p`` near Q = 1, ``erfc`` in the body, the Mills-ratio
    series in the far tail where ``erfc`` would underflow to 0.
    """
    if z < 0.0:
        return -math.log1p(-0.5 * math.erfc(-z / _SQRT2)) / LN10
    if z < ASYMPTOTIC_FROM:
        return -math.log(0.5 * math.erfc(z / _SQRT2)) / LN10
    return -_log_normal_tail_asymptotic(z) / LN10


def logistic_phi(y: float) -> float:
    """-log10 of Akka's logistic approximation to the normal tail.

    Akka computes ``e = exp(-u)``, ``u = y (1.5976 + 0.070566 y^2)``, and phi =
    ``-log10(e / (1 + e))``; that is ``softplus(u) / ln 10``, evaluated here without
    forming ``e`` so that it neither overflows nor becomes ``inf`` for large ``y``.
    """
    u = y * (LOGISTIC_A + LOGISTIC_B * y * y)
    if u > 0.0:
        return (u + math.log1p(math.exp(-u))) / LN10
    return math.log1p(math.exp(u)) / LN10


def exponential_phi(x: float) -> float:
    """-log10 P(X > x) for X exponential with mean 1: x / ln 10 (Cassandra's
    FailureDetector, ``PHI_FACTOR = 1 / ln 10``).  ``x <= 0`` gives 0."""
    return x / LN10 if x > 0.0 else 0.0


def _require_phi_level(phi: float) -> None:
    if not (phi > 0.0 and math.isfinite(phi)):
        raise ValueError(f"phi level must be a positive finite number, got {phi!r}")


@lru_cache(maxsize=256)
def normal_phi_inverse(phi: float) -> float:
    """The z with normal_phi(z) == phi (phi > 0)."""
    _require_phi_level(phi)
    p = 10.0 ** -phi
    if p > 0.0:
        z = -_STANDARD_NORMAL.inv_cdf(p)
    else:
        # 10**-phi underflows: start from the leading term of the Mills asymptote.
        z = math.sqrt(2.0 * phi * LN10)
    # Newton steps on -ln Q(z); its derivative is the inverse Mills ratio phi(z)/Q(z).
    for _ in range(4):
        target = phi * LN10
        current = normal_phi(z) * LN10
        if current == target:
            break
        log_density = -0.5 * z * z - _HALF_LN_2PI
        hazard = math.exp(log_density + current)
        z -= (current - target) / hazard
    return z


@lru_cache(maxsize=256)
def logistic_phi_inverse(phi: float) -> float:
    """The y with logistic_phi(y) == phi (phi > 0): invert the softplus, then solve
    the monotone cubic 0.070566 y^3 + 1.5976 y = u by Cardano's formula."""
    _require_phi_level(phi)
    a = phi * LN10
    u = a + math.log(-math.expm1(-a))
    sign = 1.0 if u >= 0.0 else -1.0
    u = abs(u)
    p = LOGISTIC_A / LOGISTIC_B
    q = u / LOGISTIC_B
    big = math.cbrt(q / 2.0 + math.sqrt(q * q / 4.0 + p ** 3 / 27.0))
    y = big - p / (3.0 * big) if big > 0.0 else 0.0
    # One Newton step on the cubic removes Cardano's rounding.
    y -= (y * (LOGISTIC_A + LOGISTIC_B * y * y) - u) / (LOGISTIC_A + 3 * LOGISTIC_B * y * y)
    return sign * y


def exponential_phi_inverse(phi: float) -> float:
    """The x with exponential_phi(x) == phi (phi > 0): phi * ln 10."""
    _require_phi_level(phi)
    return phi * LN10
