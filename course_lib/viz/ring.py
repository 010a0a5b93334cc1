"""What the cluster widgets (Raft, consensus) draw and read alike: nodes on a ring, the
links between them (cut ones apart), and the partition groups a learner types."""

from __future__ import annotations

import math
import re


def ring_layout(ids) -> dict:
    """``{node: (x, y)}``: the nodes clockwise on the unit circle, the first at the top
    (rounded to 4 places: the browser receives short numbers)."""
    n = len(ids)
    return {nid: (round(math.cos(math.pi / 2 - 2 * math.pi * k / n), 4),
                  round(math.sin(math.pi / 2 - 2 * math.pi * k / n), 4))
            for k, nid in enumerate(ids)}


def ring_links(ids, xy: dict, cuts) -> tuple:
    """The line segments between every two nodes, as plotly draws several in one trace
    (``x0, x1, None, ...``): ``(link_x, link_y, cut_x, cut_y)``, a pair whose link is in
    ``cuts`` (either direction) among the cut ones."""
    link_x, link_y, cut_x, cut_y = [], [], [], []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            (ax, ay), (bx, by) = xy[a], xy[b]
            if (a, b) in cuts or (b, a) in cuts:
                cut_x += [ax, bx, None]
                cut_y += [ay, by, None]
            else:
                link_x += [ax, bx, None]
                link_y += [ay, by, None]
    return link_x, link_y, cut_x, cut_y


def parse_groups(text: str, example: str = "n1 n2 | n3 n4 n5") -> list:
    """``"n1 n2 | n3 n4 n5"`` -> ``[{"n1", "n2"}, {"n3", "n4", "n5"}]`` (names split by
    spaces, commas or semicolons); ``example`` is what the error messages suggest."""
    if not isinstance(text, str):
        raise ValueError(f"partition groups must be text like '{example}', got {text!r}")
    groups = [set(re.split(r"[\s,;]+", part.strip())) - {""} for part in text.split("|")]
    groups = [g for g in groups if g]
    if len(groups) < 2:
        raise ValueError(f"write at least two groups separated by '|', e.g. '{example}' (got {text!r})")
    return groups
