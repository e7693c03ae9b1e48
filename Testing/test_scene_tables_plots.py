"""Table and plot helpers: typed columns, round trip, chart with series."""

from __future__ import annotations

import math

import pytest
import vtk

from MedGradeCoreLib.scene.plots import plot_chart
from MedGradeCoreLib.scene.tables import table_from_rows, table_to_rows

ROWS = [
    {"task": "ki67", "level": "high", "probability": 0.81, "slices": 20, "positive": True},
    {"task": "grade", "level": "HGG", "probability": 0.64, "slices": 18, "positive": False},
    {"task": "idh", "level": None, "probability": None, "slices": 20, "positive": True},
]


def test_table_columns_have_types(slicer_app):
    node = table_from_rows(slicer_app.scene, ROWS, "grades", descriptions={"probability": "P(positive)"})
    table = node.GetTable()
    assert [table.GetColumn(i).GetName() for i in range(table.GetNumberOfColumns())] == [
        "task", "level", "probability", "slices", "positive"
    ]
    assert table.GetNumberOfRows() == 3
    assert isinstance(table.GetColumnByName("task"), vtk.vtkStringArray)
    assert table.GetColumnByName("probability").GetDataType() == vtk.VTK_DOUBLE
    assert table.GetColumnByName("slices").GetDataType() == vtk.VTK_INT
    assert isinstance(table.GetColumnByName("positive"), vtk.vtkBitArray)
    assert node.GetColumnType("slices") == vtk.VTK_INT and node.GetColumnType("positive") == vtk.VTK_BIT
    assert node.GetColumnDescription("probability") == "P(positive)"
    rows = table_to_rows(node)
    assert rows[0] == ROWS[0]
    assert rows[2]["level"] == "" and math.isnan(rows[2]["probability"])


def test_refill_existing_table(slicer_app):
    node = table_from_rows(slicer_app.scene, ROWS, "grades")
    same = table_from_rows(slicer_app.scene, [{"a": 1}], "grades", node=node)
    assert same is node and table_to_rows(node) == [{"a": 1}]


def test_plot_chart_with_series(slicer_app):
    chart = plot_chart(
        slicer_app.scene,
        "slice probabilities",
        {"t1c": ([1, 2, 3], [0.2, 0.5, 0.9]), "t2": ([1, 2, 3], [0.1, 0.4, 0.7])},
        x_label="slice",
        y_label="probability",
        plot_type="scatter",
    )
    assert chart.GetClassName() == "vtkMRMLPlotChartNode"
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    series = chart.GetNthPlotSeriesNode(1)
    assert series.GetName() == "t2" and series.GetXColumnName() == "x"
    table = series.GetTableNode()
    assert [r["y"] for r in table_to_rows(table)] == [0.1, 0.4, 0.7]
    assert chart.GetXAxisTitle() == "slice"
    with pytest.raises(ValueError):
        plot_chart(slicer_app.scene, "bad", {"a": ([1, 2], [1])})
