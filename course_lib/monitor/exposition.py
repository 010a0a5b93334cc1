"""A small parser for the Prometheus text exposition format (version 0.0.4).

Understood: ``# HELP name text``, ``# TYPE name counter|gauge|histogram|summary|untyped``,
other ``#`` comments, blank lines, and samples ``name{label="value",...} value
[timestamp]`` with the escapes ``\\\\``, ``\\"`` and ``\\n`` in label values and the
values ``+Inf``, ``-Inf``, ``NaN``.  Anything else raises ``ValueError`` naming the
line.  Reference: https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


@dataclass(frozen=True)
class Sample:
    """One sample line: ``labels`` as sorted ``(name, value)`` pairs."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str:
        return dict(self.labels)[name]


@dataclass(frozen=True)
class Exposition:
    """A parsed scrape: ``types`` and ``helps`` by family name, samples in text order."""

    types: dict = field(default_factory=dict)
    helps: dict = field(default_factory=dict)
    samples: tuple[Sample, ...] = ()

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample ``name`` with exactly ``labels``; KeyError if absent."""
        want = tuple(sorted(labels.items()))
        for sample in self.samples:
            if sample.name == name and sample.labels == want:
                return sample.value
        raise KeyError(f"{name}{dict(want)}")


def _value(text: str, where: str) -> float:
    special = {"+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a sample value") from None


def _labels(text: str, where: str) -> tuple[tuple[str, str], ...]:
    pairs, i = [], 0
    while i < len(text):
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            raise ValueError(f"{where}: expected label=\"value\" at {text[i:]!r}")
        name = text[i:eq].strip()
        if not LABEL_NAME.match(name):
            raise ValueError(f"{where}: bad label name {name!r}")
        value, j = [], eq + 2
        while True:
            if j >= len(text):
                raise ValueError(f"{where}: unterminated value of label {name!r}")
            ch = text[j]
            if ch == "\\":
                escaped = text[j + 1:j + 2]
                if escaped not in ('\\', '"', "n"):
                    raise ValueError(f"{where}: bad escape \\{escaped} in label {name!r}")
                value.append("\n" if escaped == "n" else escaped)
                j += 2
            elif ch == '"':
                break
            else:
                value.append(ch)
                j += 1
        if name in dict(pairs):
            raise ValueError(f"{where}: label {name!r} given twice")
        pairs.append((name, "".join(value)))
        i = j + 1
        if i < len(text):
            if text[i] != ",":
                raise ValueError(f"{where}: expected ',' between labels at {text[i:]!r}")
            i += 1
    return tuple(sorted(pairs))


def parse_exposition(text: str) -> Exposition:
    """Parse a scrape; ``ValueError`` naming the first malformed line."""
    if not isinstance(text, str):
        raise ValueError(f"the exposition must be a str, got {type(text).__name__}")
    types, helps, samples = {}, {}, []
    for number, line in enumerate(text.split("\n"), 1):
        where = f"line {number}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.match(name):
                    raise ValueError(f"{where}: bad metric name {name!r}")
                if parts[1] == "TYPE":
                    kind = parts[3].strip() if len(parts) == 4 else ""
                    if kind not in TYPES:
                        raise ValueError(f"{where}: unknown type {kind!r} for {name}")
                    if name in types:
                        raise ValueError(f"{where}: second TYPE line for {name}")
                    types[name] = kind
                else:
                    helps[name] = parts[3] if len(parts) == 4 else ""
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            body, closing, tail = rest.rpartition("}")
            if not closing:
                raise ValueError(f"{where}: '{{' without '}}'")
            labels = _labels(body, where)
        else:
            name, _, tail = line.partition(" ")
            labels = ()
        if not METRIC_NAME.match(name):
            raise ValueError(f"{where}: bad metric name {name!r}")
        fields = tail.split()
        if not 1 <= len(fields) <= 2:
            raise ValueError(f"{where}: expected 'value [timestamp]' after {name}, got {tail!r}")
        samples.append(Sample(name, labels, _value(fields[0], where)))
    return Exposition(types, helps, tuple(samples))
