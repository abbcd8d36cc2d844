"""Tests for argminn_plugin.plot: files written, axes counts, what is drawn, and error paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from argminn_plugin.model import ARGMINN
from argminn_plugin.plot import plot_filter_logos, plot_sequence_tracks, plot_spacing_histograms, save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pfm(consensus: str, p: float = 0.85) -> np.ndarray:
    out = np.full((4, len(consensus)), (1 - p) / 3)
    for i, c in enumerate(consensus):
        out["ACGT".index(c), i] = p
    return out


@pytest.fixture(scope="module")
def model() -> ARGMINN:
    torch.manual_seed(0)
    return ARGMINN(n_filters=3, filter_width=6, n_attention_layers=1, n_heads=2, token_dim=8, stream_dim=16).train()


@pytest.fixture(scope="module")
def X() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.one_hot(torch.randint(0, 4, (2, 60), generator=g), 4).permute(0, 2, 1).to(torch.int8)


def test_filter_logos_dict_png(tmp_path):
    path = tmp_path / "logos.png"
    fig = plot_filter_logos({"GATA": _pfm("AGATAA"), "EBOX": _pfm("CACGTG")}, path=path)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000
    assert [ax.get_title() for ax in fig.axes] == ["GATA", "EBOX"]


def test_filter_logos_array_quality_annotation_svg(tmp_path):
    pfms = np.stack([_pfm("AGATAA"), np.zeros((4, 6)), _pfm("CACGTG"), _pfm("TTTTTT", p=0.3)])
    fig = plot_filter_logos(pfms)
    assert len(fig.axes) == 3  # the all-zero (unused) filter is skipped
    quality = pd.DataFrame({"filter": [0, 1, 2, 3], "used": [True, False, True, True],
                            "trim_start": [1, 0, 0, 0], "trim_end": [5, 0, 6, 6], "mean_ic": [1.5, 0, 1.2, 0.1],
                            "passes": [True, False, True, False]})
    annotation = pd.DataFrame({"motif": ["filter_0", "filter_0", "filter_2"], "rank": [1, 0, 0],
                               "target_name": ["WRONG", "GATA1", "MAX"], "q_value": [0.5, 0.001, 0.01]})
    path = tmp_path / "logos.svg"
    fig = plot_filter_logos(pfms, quality, annotation, path=path, trim=True)
    assert len(fig.axes) == 2
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("filter_0") and "GATA1" in titles[0] and "mean IC 1.50" in titles[0]
    assert "WRONG" not in titles[0] and "MAX" in titles[1]
    assert fig.axes[0].get_xlim()[1] == pytest.approx(4)  # trimmed to columns 1..5
    text = path.read_text()
    assert "<svg" in text and len(text) > 1000


def test_filter_logos_nothing_and_errors(tmp_path):
    fig = plot_filter_logos(np.zeros((2, 4, 5)))
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match=r"\(n_filters, 4, w\)"):
        plot_filter_logos(np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match=r"\(4, w\)"):
        plot_filter_logos({"bad": np.zeros((5, 4))})
    with pytest.raises(ValueError, match="format"):
        plot_filter_logos({"GATA": _pfm("AGATAA")}, path=tmp_path / "logos.jpg")
    with pytest.raises(ValueError, match="motif_quality"):
        plot_filter_logos(np.stack([_pfm("AGATAA")]), quality=pd.DataFrame({"x": [1]}))
    assert list(tmp_path.iterdir()) == []


def test_sequence_tracks(model, X, tmp_path):
    instances = pd.DataFrame({"example_idx": [0, 0, 1], "start": [5, 30, 10], "end": [11, 36, 16],
                              "motif": ["A", "B", "A"]})
    path = tmp_path / "tracks.png"
    fig = plot_sequence_tracks(model, X[0], instances, path=path, example_idx=0, attention_threshold=0.5)
    assert len(fig.axes) == 1 + model.n_filters
    assert path.read_bytes()[:8] == PNG_MAGIC
    # Two shaded spans (example 0 only) on every panel, at the instance coordinates.
    for ax in fig.axes:
        spans = [p for p in ax.patches]
        assert len(spans) == 2
        xs = sorted(round(p.get_x()) for p in spans)
        assert xs == [5, 30]
    # The model's mode is restored; the tracks come from eval mode (BatchNorm on running statistics).
    assert model.training
    # The attention track is the max over layers and heads, drawn at window starts.
    with torch.no_grad():
        model.eval()
        expected = model.forward_with_interims(X[:1]).attention[0].amax(dim=(0, 1)).numpy()
        model.train()
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
    assert len(line.get_xdata()) == X.shape[-1] - model.filter_width + 1

    fig = plot_sequence_tracks(model, X[1:2], filters=[2], show_sequence=True, path=tmp_path / "t.svg")
    assert len(fig.axes) == 3


def test_sequence_tracks_errors(model, X):
    with pytest.raises(ValueError, match="one sequence"):
        plot_sequence_tracks(model, X)
    with pytest.raises(ValueError, match="one sequence"):
        plot_sequence_tracks(model, torch.zeros(5, 60))
    with pytest.raises(ValueError, match="example_idx"):
        plot_sequence_tracks(model, X[0], pd.DataFrame({"example_idx": [0, 1], "start": [1, 2], "end": [7, 8]}))
    with pytest.raises(ValueError, match="filters"):
        plot_sequence_tracks(model, X[0], filters=[3])
    with pytest.raises(ValueError, match="forward_with_interims"):
        plot_sequence_tracks(torch.nn.Linear(2, 2), X[0])


def test_spacing_histograms(tmp_path):
    spacings = pd.DataFrame({"motif_a": ["A", "A", "A", "B", "B"], "motif_b": ["B", "B", "A", "A", "A"],
                             "spacing": [2, 5, 0, -3, 7], "count": [4, 1, 2, 3, 3]})
    path = tmp_path / "spacing.png"
    fig = plot_spacing_histograms(spacings, path=path)
    assert len(fig.axes) == 3 and path.read_bytes()[:8] == PNG_MAGIC
    # Pairs by total count: (B, A) 6, (A, B) 5, (A, A) 2; bar heights add up to the counts.
    assert [sum(p.get_height() for p in ax.patches) for ax in fig.axes] == [6, 5, 2]
    assert fig.axes[0].get_title().startswith("B")
    fig = plot_spacing_histograms(spacings, pairs=[("A", "B"), ("C", "D")], path=tmp_path / "s.svg")
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 0
    assert sorted(p.get_x() + p.get_width() / 2 for p in fig.axes[0].patches) == [2, 5]
    assert len(plot_spacing_histograms(spacings.iloc[:0]).axes) == 1
    with pytest.raises(ValueError, match="missing columns"):
        plot_spacing_histograms(spacings.drop(columns="count"))
    with pytest.raises(ValueError, match="tuples"):
        plot_spacing_histograms(spacings, pairs=[("A", "B", "C")])


def test_save_figure_rejects_unknown_suffix(tmp_path):
    fig = plot_spacing_histograms(pd.DataFrame(columns=["motif_a", "motif_b", "spacing", "count"]))
    with pytest.raises(ValueError, match="format"):
        save_figure(fig, tmp_path / "x.gif")
    assert save_figure(fig, tmp_path / "x.pdf").read_bytes()[:4] == b"%PDF"
