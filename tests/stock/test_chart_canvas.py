"""The drawing shortcuts under the charts: min/max downsampling, cached text, frozen legends,
the PNG encoder. Each is checked against what plain matplotlib or Pillow would produce."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from PIL import Image

from automation_scripts.stock.chart_canvas import (
    FrozenArtist,
    TemplateCanvas,
    TextCachingRenderer,
    encode_png,
    minmax_downsample,
)


def _columns(x: np.ndarray, x0: float, x1: float, columns: int) -> np.ndarray:
    return np.clip(((x - x0) * (columns / (x1 - x0))).astype(np.intp), -1, columns)


@pytest.mark.parametrize("with_gaps", [False, True])
def test_downsample_keeps_each_pixel_columns_min_and_max(with_gaps):
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0.0, 3650.0, 20_000))
    y = np.cumsum(rng.normal(size=x.size)) + 100.0
    if with_gaps:                                  # NaN runs (a line's breaks) and strays
        y[:300] = np.nan
        y[5_000:5_400] = np.nan
        y[rng.integers(0, x.size, 50)] = np.nan
    columns = 300
    dx, dy = minmax_downsample(x, y, 0.0, 3650.0, columns)

    assert len(dx) <= 4 * columns and len(dx) < len(x) / 10
    assert np.all(np.diff(dx) >= 0)                # still in x order: a drawable line
    assert (dx[0], dx[-1]) == (x[0], x[-1])        # the ends stay where they were
    col, dcol = _columns(x, 0.0, 3650.0, columns), _columns(dx, 0.0, 3650.0, columns)
    for c in np.unique(col):
        full, kept = y[col == c], dy[dcol == c]
        if np.isnan(full).all():
            assert np.isnan(kept).all()
            continue
        assert np.nanmin(kept) == np.nanmin(full)
        assert np.nanmax(kept) == np.nanmax(full)
        # ... and its first and last point, so the line enters and leaves it as before.
        assert np.array_equal(kept[[0, -1]], full[[0, -1]], equal_nan=True)


def test_downsample_leaves_short_series_alone():
    x = np.arange(504, dtype=float)
    y = np.sin(x)
    dx, dy = minmax_downsample(x, y, 0.0, 600.0, 550)   # two years across a chart
    assert dx is x and dy is y


def _draw_text(renderer: RendererAgg, angle: float, weight: str, alpha: float) -> np.ndarray:
    gc = renderer.new_gc()
    gc.set_foreground("#d62728")
    gc.set_alpha(alpha)
    # A whole-pixel anchor: there the cached raster and matplotlib's own placement agree.
    renderer.draw_text(gc, 60, 150, "GOOG · yahoo (recorded) · as of 2026-02-17",
                       FontProperties(size=11, weight=weight), angle)
    gc.restore()
    return np.asarray(renderer.buffer_rgba()).astype(int)


@pytest.mark.parametrize(("angle", "weight", "alpha"),
                         [(0, "normal", 1.0), (90, "normal", 1.0), (20, "bold", 0.18),
                          (0, "normal", 0.5)])
def test_cached_text_is_matplotlibs_text(angle, weight, alpha):
    plain = _draw_text(RendererAgg(400, 300, 80), angle, weight, alpha)
    cached = _draw_text(TextCachingRenderer(400, 300, 80), angle, weight, alpha)
    assert (plain != plain[0, 0]).any()
    # Identical but for rounding where two glyphs' antialiased edges overlap.
    assert np.abs(plain - cached).max() <= 2


def test_cached_text_in_a_figure_moves_by_less_than_a_pixel():
    def drawn(canvas_class: type[FigureCanvasAgg]) -> np.ndarray:
        fig = Figure(figsize=(4, 1), dpi=80)
        canvas = canvas_class(fig)
        fig.text(0.2513, 0.4972, "Price", fontsize=11, rotation=90)   # fractional anchor
        canvas.draw()
        ink = 255 - np.asarray(canvas.buffer_rgba())[:, :, 0].astype(float)
        rows, cols = np.indices(ink.shape)
        return np.array([(rows * ink).sum(), (cols * ink).sum()]) / ink.sum()

    # Placed on the nearest whole pixel, as matplotlib up to 3.10 placed all text.
    assert np.abs(drawn(FigureCanvasAgg) - drawn(TemplateCanvas)).max() <= 0.75


def test_cached_text_is_drawn_from_the_cache_the_second_time():
    renderer = TextCachingRenderer(200, 50, 80)
    fig = Figure(figsize=(2.5, 0.625), dpi=80)
    fig.text(0.1, 0.5, "Price", fontproperties=FontProperties(size=10))
    fig.draw(renderer)
    first = np.asarray(renderer.buffer_rgba()).copy()
    assert len(renderer._rasters) == 1
    renderer.clear()
    fig.draw(renderer)
    assert len(renderer._rasters) == 1
    assert (np.asarray(renderer.buffer_rgba()) == first).all()


def test_frozen_legend_is_the_legend():
    def chart(freeze: bool) -> np.ndarray:
        fig = Figure(figsize=(5, 3), dpi=80)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.fill_between([0, 1], [0, 0], [1, 1], color="#9ecae1", alpha=0.35, label="Band")
        ax.plot([0, 1], [0.2, 0.8], color="#1f3b73", label="Close")
        ax.plot([0, 1], [0.8, 0.2], color="#d55e00", linestyle="--", label="Forecast")
        legend = ax.legend(loc="upper left", fontsize=7, ncol=2, frameon=False)
        if freeze:
            FrozenArtist.freeze(legend)
            assert ax.get_legend() is None
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).astype(int)

    # Blended once onto transparency, then onto the chart: rounding differs by a level or two.
    assert np.abs(chart(False) - chart(True)).max() <= 2


@pytest.mark.parametrize("opaque", [True, False])
def test_encode_png_round_trips(opaque):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    if opaque:
        rgba[:, :, 3] = 255
    data = encode_png(rgba)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and image.size == (53, 37)
    assert image.mode == ("RGB" if opaque else "RGBA")
    assert not image.info.get("Software")             # no metadata chunks
    assert (np.asarray(image) == rgba[:, :, : 3 if opaque else 4]).all()


def test_template_canvas_keeps_its_renderer():
    canvas = TemplateCanvas(Figure(figsize=(2, 1), dpi=80))
    renderer = canvas.get_renderer()
    assert isinstance(renderer, TextCachingRenderer)
    assert canvas.get_renderer() is renderer
    assert isinstance(renderer, RendererAgg)
