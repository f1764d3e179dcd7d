"""Agg drawing that a reused chart figure needs to be cheap: cached text, plain PNG, M4 lines.

Three costs dominate a small matplotlib chart once the figure itself is reused, and each has a
remedy here:

- Text. matplotlib 3.11 lays out and rasterises every glyph of every label on every draw (about
  0.5 ms a label, twenty labels a chart). ``TextCachingRenderer`` rasterises a string once per
  font, angle and antialiasing, with matplotlib's own glyph rendering, and blends the cached
  coverage bitmap in later draws. The one visible difference: a cached string is placed on the
  whole pixel nearest its anchor instead of at a 1/64-pixel offset.
- PNG. matplotlib's ``print_png`` (Pillow, RGBA, filtered rows, zlib level 6, a Software
  chunk) takes ~10 ms a chart. On a chart (flat colours, white ground) unfiltered RGB rows at
  zlib level 1 take ~3 ms and come out ~10 % smaller. ``encode_png`` writes that: RGB (the
  figures are opaque), no metadata chunks.
- Long series. ``minmax_downsample`` keeps the first, lowest, highest and last point of every
  pixel column (M4), so a line drawn from it covers the same pixels as the full series.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backend_bases import GraphicsContextBase
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import FontProperties, fontManager, get_font
from matplotlib.ft2font import RenderMode
from matplotlib.text import Text

PNG_LEVEL = 1            # zlib level: half the time of level 6 for ~10 % more bytes
TEXT_CACHE_SIZE = 512    # strings per renderer (a chart has ~20; titles change per ticker)

# A cached string: coverage bitmap (uint8, rows top-down) and its top-left corner relative
# to the text's anchor, in pixels, y upwards; ``None`` for a string with no ink (spaces).
_Raster = tuple[np.ndarray, int, int] | None


def _font_key(prop: FontProperties) -> tuple[Any, ...]:
    """What a FontProperties contributes to the rendering (it is mutable: never a key)."""
    return (tuple(prop.get_family()), prop.get_style(), prop.get_variant(), prop.get_weight(),
            prop.get_stretch(), prop.get_size_in_points(), prop.get_file(),
            prop.get_math_fontfamily())


class TextCachingRenderer(RendererAgg):
    """``RendererAgg`` that rasterises each distinct plain-text string once."""

    def __init__(self, width: float, height: float, dpi: float) -> None:
        super().__init__(width, height, dpi)
        self._rasters: OrderedDict[tuple[Any, ...], _Raster] = OrderedDict()
        self._metrics: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}

    def draw_text(self, gc: GraphicsContextBase, x: float, y: float, s: str,
                  prop: FontProperties, angle: float, ismath: bool | str = False,
                  mtext: Text | None = None) -> None:
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        antialiased = bool(gc.get_antialiased())
        key = (s, _font_key(prop), angle, antialiased,
               None if features is None else tuple(features), language)
        if key in self._rasters:
            self._rasters.move_to_end(key)
            raster = self._rasters[key]
        else:
            raster = self._rasterise(s, prop, angle, antialiased, features, language)
            self._rasters[key] = raster
            if len(self._rasters) > TEXT_CACHE_SIZE:
                self._rasters.popitem(last=False)
        if raster is None:
            return None
        image, left, top = raster
        # draw_text_image takes the bitmap's left and its bottom edge, y downwards.
        bottom = int(self.height) - (round(self.height - y) + top) + image.shape[0]
        self._renderer.draw_text_image(image, round(x) + left, bottom, 0, gc)
        return None

    def _get_font_height_metrics(self, prop: FontProperties
                                 ) -> tuple[float, float, float] | tuple[None, None, None]:
        """The line metrics ``Text._get_layout`` asks its renderer for (when it has this
        method) before reading them from the font's tables on every layout; cached."""
        key = _font_key(prop)
        if key not in self._metrics:
            self._metrics[key] = _font_height_metrics(prop, self.dpi)
        return self._metrics[key]

    def _rasterise(self, s: str, prop: FontProperties, angle: float, antialiased: bool,
                   features: Any, language: Any) -> _Raster:
        """Glyph by glyph as ``RendererAgg.draw_text`` does, into one bitmap at the origin."""
        flags = get_hinting_flag()
        font = self._prepare_font(prop)
        items = font._layout(s, flags=flags, features=features, language=language)
        size = prop.get_size_in_points()
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        rotation = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
        mode = RenderMode.NORMAL if antialiased else RenderMode.MONO
        glyphs = []
        for item in items:
            face = item.ft_object
            face.set_size(size, self.dpi)
            face._set_transform(rotation, [round(0x40 * (item.x * cos - item.y * sin)),
                                           round(0x40 * (item.x * sin + item.y * cos))])
            bitmap = face._render_glyph(item.glyph_index, flags, mode)
            buffer = np.array(bitmap.buffer, dtype=np.uint8)
            if not antialiased:
                buffer *= 0xff
            if buffer.size:
                glyphs.append((bitmap.left, bitmap.top, buffer))
        if not glyphs:
            return None
        left = min(g[0] for g in glyphs)
        right = max(g[0] + g[2].shape[1] for g in glyphs)
        top = max(g[1] for g in glyphs)
        bottom = min(g[1] - g[2].shape[0] for g in glyphs)
        # Overlapping glyph edges combine as successive blends would: 1 - (1 - a)(1 - b).
        clear = np.full((top - bottom, right - left), 255, np.uint16)
        for g_left, g_top, buffer in glyphs:
            r, c = top - g_top, g_left - left
            window = clear[r:r + buffer.shape[0], c:c + buffer.shape[1]]
            window[...] = window * (255 - buffer.astype(np.uint16)) // 255
        return (255 - clear).astype(np.uint8), left, top


def _font_height_metrics(prop: FontProperties, dpi: float
                         ) -> tuple[float, float, float] | tuple[None, None, None]:
    """(ascent, descent, line gap) in pixels as ``Text._get_layout`` computes them."""
    font = get_font(fontManager._find_fonts_by_props(prop))
    for table_name, gap, ascent, descent in (
            ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
            ("hhea", "lineGap", "ascent", "descent")):
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        scale = prop.get_size_in_points() * dpi / 72 / font.get_sfnt_table("head")["unitsPerEm"]
        return table[ascent] * scale, -table[descent] * scale, table[gap] * scale
    return None, None, None


class FrozenArtist(Artist):
    """A bitmap of an artist that looks the same on every draw (a legend with fixed entries at
    a fixed place), taken once on a transparent canvas of the figure's size and blended in
    on later draws. Put it in the artist's place (``freeze``)."""

    def __init__(self, artist: Artist, width: int, height: int, dpi: float) -> None:
        super().__init__()
        self.set_zorder(artist.get_zorder())
        scratch = RendererAgg(width, height, dpi)
        artist.draw(scratch)
        rgba = np.asarray(scratch.buffer_rgba())
        rows = np.flatnonzero(rgba[:, :, 3].any(axis=1))
        cols = np.flatnonzero(rgba[:, :, 3].any(axis=0))
        top, bottom = (rows[0], rows[-1] + 1) if len(rows) else (0, 0)
        left, right = (cols[0], cols[-1] + 1) if len(cols) else (0, 0)
        self.image = rgba[top:bottom, left:right].copy()   # rows top-down
        self.left, self.bottom = int(left), height - int(bottom)

    @classmethod
    def freeze(cls, artist: Artist) -> FrozenArtist:
        """Replace ``artist`` (on an Axes) with its bitmap; returns the stand-in."""
        ax, fig = artist.axes, artist.get_figure(root=True)
        width, height = (int(v) for v in fig.canvas.get_width_height(physical=True))
        frozen = cls(artist, width, height, fig.dpi)
        artist.remove()
        ax.add_artist(frozen)
        return frozen

    def draw(self, renderer: RendererAgg) -> None:
        if self.get_visible() and self.image.size:
            gc = renderer.new_gc()
            renderer.draw_image(gc, self.left, self.bottom, self.image[::-1])
            gc.restore()
        self.stale = False


class TemplateCanvas(FigureCanvasAgg):
    """Agg canvas whose renderer caches text; meant to draw one reused figure many times."""

    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = TextCachingRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(rgba: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """An 8-bit PNG of an (h, w, 4) uint8 image: RGB when fully opaque, unfiltered rows."""
    h, w, _ = rgba.shape
    opaque = bool((rgba[:, :, 3] == 255).all())
    channels = 3 if opaque else 4
    rows = np.empty((h, 1 + w * channels), np.uint8)
    rows[:, 0] = 0                                   # filter type 0 (None) on every row
    rows[:, 1:].reshape(h, w, channels)[...] = rgba[:, :, :channels]
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if opaque else 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b""))


def minmax_downsample(x: np.ndarray, y: np.ndarray, x0: float, x1: float,
                      columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` with at most four points per pixel column of ``[x0, x1]``: the first, the
    lowest, the highest and the last (NaN ignored for lowest/highest). Each column keeps its
    minimum and maximum, so the drawn envelope is unchanged; series with no more than four
    points per column come back as they are. ``x`` must be sorted."""
    n = len(x)
    if n <= 4 * columns or x1 <= x0 or columns < 1:
        return x, y
    col = np.clip(((x - x0) * (columns / (x1 - x0))).astype(np.intp), -1, columns)
    first = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    last = np.r_[first[1:] - 1, n - 1]
    nan = np.isnan(y)
    by_low = np.lexsort((np.where(nan, np.inf, y), col))     # per column, lowest first
    by_high = np.lexsort((np.where(nan, np.inf, -y), col))   # per column, highest first
    starts = np.searchsorted(col[by_low], col[first])        # col is sorted with x
    keep = np.unique(np.concatenate((first, last, by_low[starts], by_high[starts])))
    return x[keep], y[keep]
