"""Report: renders a `StudyAnalysis` (never storage) as one self-contained HTML file of plotly figures and tables,
or as terminal tables for `sweeper analyze`."""

from ._console import print_analysis
from ._html import SECTIONS, render_report, write_report

__all__ = ["SECTIONS", "print_analysis", "render_report", "write_report"]
