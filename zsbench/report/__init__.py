"""`zsbench report`: result and bench JSONs -> `report.md` with PNG figures (matplotlib, Agg backend)."""

from __future__ import annotations

from zsbench.report.document import ReportInputs, load_inputs, write_report

__all__ = ["ReportInputs", "load_inputs", "write_report"]
