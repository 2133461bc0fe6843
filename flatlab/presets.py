"""Benchmarks from the seed papers, ready to submit as `{"preset": NAME}`.

Each preset runs one seed paper's own setup (`flatlab.paper_presets`), scaled
down only in epochs or width where a CPU forces it, which its description says.
`apply_preset` fills a request from its preset: the request's `base` is merged
into the preset's base field by field, its `axes` replace the preset's axes of
the same path (an axis given as null is dropped), and any other field replaces
the preset's. Torch-free.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from flatlab.paper_presets import paper_presets
from flatlab.paper_presets_more import later_presets
from sam_core.spec.benchmark import overlay_spec

__all__ = ["PRESETS", "Preset", "UnknownPreset", "apply_preset"]


class UnknownPreset(LookupError):
    pass


@dataclass(frozen=True)
class Preset:
    """A benchmark body and what its claim is read from.

    `metrics` are the summary metrics the paper's claim is about (the runner
    `scripts/run_preset.py` tabulates them, and every point's spec must ask for
    what they need); `series` are metrics whose course over the run matters
    (Khanh et al.'s gradient norm), tabulated at a few evaluation steps.
    """

    name: str
    title: str
    reference: str
    description: str
    body: dict[str, Any]
    metrics: tuple[str, ...] = ()
    series: tuple[str, ...] = ()


def _preset(
    name: str,
    title: str,
    reference: str,
    description: str,
    *,
    metrics: tuple[str, ...] = (),
    series: tuple[str, ...] = (),
    **body: Any,
) -> Preset:
    body = {"name": name, **body}
    return Preset(name, title, reference, " ".join(description.split()), body, metrics, series)


PRESETS: dict[str, Preset] = {p.name: p for p in [*paper_presets(_preset), *later_presets(_preset)]}


def apply_preset(request: dict[str, Any]) -> dict[str, Any]:
    """The benchmark body of `request["preset"]` with the request's fields laid over it."""
    name = request["preset"]
    preset = PRESETS.get(name)
    if preset is None:
        raise UnknownPreset(f"no preset {name!r}; one of {', '.join(PRESETS)}")
    body = copy.deepcopy(preset.body)
    for key, value in request.items():
        if key == "base":
            body["base"] = overlay_spec(body["base"], value)
        elif key == "axes":
            axes = {**body.get("axes", {}), **value}
            body["axes"] = {k: v for k, v in axes.items() if v is not None}
        else:
            body[key] = value
    return body
