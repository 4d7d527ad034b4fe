"""A tiny two-package repository the language-server and editor tests open: an imported class
and function in one file, their use in another (cross-file completion context, citations)."""

from __future__ import annotations

GEOMETRY = '''"""Plane geometry helpers."""


class Rectangle:
    """An axis-aligned rectangle."""

    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height

    def area(self) -> float:
        """The rectangle's area."""
        return self.width * self.height


def rectangle_perimeter(width: float, height: float) -> float:
    """Perimeter of a width x height rectangle."""
    return 2 * (width + height)
'''

REPORT = """from shapes.geometry import Rectangle, rectangle_perimeter


def describe(width: float, height: float) -> str:
    shape = Rectangle(width, height)
    perimeter = rectangle_perimeter(width, height)
    return f"area {shape.area()} perimeter {perimeter}"
"""

FILES = {
    "shapes/__init__.py": "",
    "shapes/geometry.py": GEOMETRY,
    "app/__init__.py": "",
    "app/report.py": REPORT,
    "README.md": "# Shapes\n\nA tiny repository for Enclave's editor and language-server tests.\n",
}
