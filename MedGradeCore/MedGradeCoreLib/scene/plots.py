"""Curves -> ``vtkMRMLPlotChartNode`` with one ``vtkMRMLPlotSeriesNode`` per series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import slicer

from MedGradeCoreLib.scene.tables import table_from_rows

_TYPES = {"line": "PlotTypeLine", "scatter": "PlotTypeScatter", "bar": "PlotTypeScatterBar"}


def plot_chart(
    scene: Any,
    name: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    x_label: str = "x",
    y_label: str = "y",
    plot_type: str = "line",
) -> Any:
    """Add a chart; each ``series[name] = (x, y)`` becomes a table (columns ``x``, ``y``) and a
    series node referencing it. Returns the chart node (series via ``GetNthPlotSeriesNode``)."""
    if plot_type not in _TYPES:
        raise ValueError(f"plot_type must be one of {sorted(_TYPES)}")
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
    chart.SetTitle(name)
    chart.SetXAxisTitle(x_label)
    chart.SetYAxisTitle(y_label)
    for series_name, (xs, ys) in series.items():
        if len(xs) != len(ys):
            raise ValueError(f"series {series_name!r}: {len(xs)} x values but {len(ys)} y values")
        rows = [{"x": float(x), "y": float(y)} for x, y in zip(xs, ys)]
        table = table_from_rows(scene, rows, f"{name} {series_name}", columns=["x", "y"])
        plot = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", series_name)
        plot.SetAndObserveTableNodeID(table.GetID())
        plot.SetXColumnName("x")
        plot.SetYColumnName("y")
        plot.SetPlotType(getattr(slicer.vtkMRMLPlotSeriesNode, _TYPES[plot_type]))
        chart.AddAndObservePlotSeriesNodeID(plot.GetID())
    return chart
