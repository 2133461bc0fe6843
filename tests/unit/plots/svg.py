"""Reading what a rendered plot shows: ids of tagged artists in an SVG, pixels of a PNG."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
from matplotlib import image


def svg_ids(svg: bytes, prefix: str) -> list[str]:
    """Ids (after `prefix-`) of the SVG's elements tagged `prefix-…`, in document order."""
    root = ET.fromstring(svg)
    ids = [e.get("id", "") for e in root.iter()]
    return [i[len(prefix) + 1 :] for i in ids if i.startswith(f"{prefix}-")]


def png_pixels(png: bytes) -> np.ndarray:
    """The PNG as an (height, width, channels) float array in [0, 1]."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return image.imread(io.BytesIO(png), format="png")


def assert_drawn(png: bytes, min_width: int = 300, min_height: int = 200) -> None:
    """A PNG of a readable size with a real drawing: a good share of non-white pixels
    in more than one colour (a blank or single-colour image fails)."""
    pixels = png_pixels(png)
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    rgb = pixels[..., :3]
    ink = (rgb < 0.95).any(axis=-1).mean()
    assert ink > 0.02, f"only {ink:.3%} of the pixels are not white"
    colours = {tuple(c) for c in np.round(rgb.reshape(-1, 3)[::97] * 8)}
    assert len(colours) >= 4, colours
