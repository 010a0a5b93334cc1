"""Interval distributions a phi accrual detector can assume.

A distribution turns (time since the last heartbeat, mean interval, standard deviation
of intervals) into phi = -log10 P(the next heartbeat is later than that), and back:
``elapsed_at(phi, mean, std)`` is the silence after which phi reaches ``phi``.

- ``normal``: the model of Hayashibara et al. 2004, computed exactly (``tails``).
- ``logistic``: Akka's approximation of the same normal tail (Bowling et al. 2009).
- ``exponential``: Cassandra's ``FailureDetector``, which uses the mean only.

Contract: ``mean > 0`` and ``std > 0`` (the detector floors ``std`` at its
``min_std_dev``); ``phi`` is non-decreasing in ``elapsed``.
"""

from __future__ import annotations

import math

from . import tails

_log = math.log
_erfc = math.erfc
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_LN10 = tails.LN10
_ASYMPTOTIC_FROM = tails.ASYMPTOTIC_FROM
_normal_phi = tails.normal_phi


class Normal:
    name = "normal"

    @staticmethod
    def phi(elapsed: float, mean: float, std: float) -> float:
        z = (elapsed - mean) / std
        if 0.0 <= z < _ASYMPTOTIC_FROM:
            # The common case of tails.normal_phi, inlined: it is on the hot path.
            return -_log(0.5 * _erfc(z * _INV_SQRT2)) / _LN10
        return _normal_phi(z)

    @staticmethod
    def elapsed_at(phi: float, mean: float, std: float) -> float:
        return mean + std * tails.normal_phi_inverse(phi)

    @staticmethod
    def pdf_params(mean: float, std: float) -> tuple[float, float]:
        """Location and scale of the fitted density (for plotting)."""
        return mean, std


class Logistic:
    name = "logistic"

    @staticmethod
    def phi(elapsed: float, mean: float, std: float) -> float:
        return tails.logistic_phi((elapsed - mean) / std)

    @staticmethod
    def elapsed_at(phi: float, mean: float, std: float) -> float:
        return mean + std * tails.logistic_phi_inverse(phi)

    @staticmethod
    def pdf_params(mean: float, std: float) -> tuple[float, float]:
        return mean, std


class Exponential:
    name = "exponential"

    @staticmethod
    def phi(elapsed: float, mean: float, std: float) -> float:
        return tails.exponential_phi(elapsed / mean)

    @staticmethod
    def elapsed_at(phi: float, mean: float, std: float) -> float:
        return mean * tails.exponential_phi_inverse(phi)

    @staticmethod
    def pdf_params(mean: float, std: float) -> tuple[float, float]:
        return mean, mean


DISTRIBUTIONS = {d.name: d for d in (Normal, Logistic, Exponential)}


def density(name: str, x: float, mean: float, std: float) -> float:
    """Probability density of the fitted interval distribution at ``x`` (for plots).

    ``logistic`` is the density of Akka's approximating CDF, not of a logistic
    distribution with the same variance.
    """
    if name == "normal":
        z = (x - mean) / std
        return math.exp(-0.5 * z * z) / (std * math.sqrt(2.0 * math.pi))
    if name == "logistic":
        y = (x - mean) / std
        u = y * (tails.LOGISTIC_A + tails.LOGISTIC_B * y * y)
        du = tails.LOGISTIC_A + 3.0 * tails.LOGISTIC_B * y * y
        e = math.exp(-abs(u))
        return e / (1.0 + e) ** 2 * du / std
    if name == "exponential":
        return math.exp(-x / mean) / mean if x >= 0.0 else 0.0
    raise ValueError(f"distribution must be one of {sorted(DISTRIBUTIONS)}, got {name!r}")
