"""Template filters for templates/analytics/_chart.html."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

register = template.Library()


@register.filter
def labelled(row: Iterable[object], headers: Iterable[object]) -> list[tuple[object, object]]:
    """A row's cells paired with their column titles: on a phone the table turns into one
    card per row (.stack-table), and each cell shows its title beside it (data-label)."""
    return list(zip(headers, row, strict=False))
