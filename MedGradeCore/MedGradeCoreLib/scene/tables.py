"""Rows of plain values <-> ``vtkMRMLTableNode`` with typed columns."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import vtk

# Column type names as Slicer's table node spells them.
_ARRAYS = {"bit": vtk.vtkBitArray, "int": vtk.vtkIntArray, "double": vtk.vtkDoubleArray, "string": vtk.vtkStringArray}


def _column_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return "bit"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int" if len(present) == len(values) else "double"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "double"
    return "string"


def _converted(value: Any, kind: str) -> Any:
    if kind == "double":
        return math.nan if value is None else float(value)
    if kind == "string":
        return "" if value is None else str(value)
    return int(value)


def table_from_rows(
    scene: Any,
    rows: Sequence[Mapping[str, Any]],
    name: str,
    columns: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    node: Any | None = None,
) -> Any:
    """Add (or refill) a table node from dict rows.

    Column order: ``columns`` or first appearance. Types per column: all bool -> ``bit``, all int ->
    ``int``, numbers -> ``double`` (missing -> NaN), otherwise ``string`` (missing -> "").
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    table.Initialize()
    for column in columns:
        values = [row.get(column) for row in rows]
        kind = _column_type(values)
        array = _ARRAYS[kind]()
        array.SetName(column)
        array.SetNumberOfValues(len(values))
        for i, value in enumerate(values):
            array.SetValue(i, _converted(value, kind))
        table.AddColumn(array)
        node.SetColumnType(column, array.GetDataType())
        if descriptions and column in descriptions:
            node.SetColumnDescription(column, descriptions[column])
        if units and column in units:
            node.SetColumnUnitLabel(column, units[column])
    node.Modified()
    return node


def table_to_rows(node: Any) -> list[dict[str, Any]]:
    """The table's rows as dicts with Python values (bit -> bool, int -> int, double -> float)."""
    table = node.GetTable()
    rows: list[dict[str, Any]] = [{} for _ in range(table.GetNumberOfRows())]
    for c in range(table.GetNumberOfColumns()):
        array = table.GetColumn(c)
        name = array.GetName()
        for r in range(len(rows)):
            if isinstance(array, vtk.vtkStringArray):
                rows[r][name] = array.GetValue(r)
            elif isinstance(array, vtk.vtkBitArray):
                rows[r][name] = bool(array.GetValue(r))
            elif array.GetDataType() in (vtk.VTK_FLOAT, vtk.VTK_DOUBLE):
                rows[r][name] = float(array.GetValue(r))
            else:
                rows[r][name] = int(array.GetValue(r))
    return rows
