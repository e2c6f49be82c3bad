"""Panels that apps further right in the dependency order add to members' pages.

members cannot import points, tiers or campaigns, yet the portal home and the staff member
360 page show their parts (and core, where the registry lives, imports no app at all). So
those apps register a panel here from their `AppConfig.ready()`: a template and a context
function `(member, request) -> dict | None`. Returning None leaves the panel out (nothing to
say, e.g. no points expiring soon). The two registries are separate because a member and a
member of staff see different things.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

# The member whose page it is (a members.Member: core cannot name it).
PanelContext = Callable[[Model, HttpRequest], dict[str, Any] | None]


@dataclass(frozen=True)
class Panel:
    name: str
    order: int
    template: str
    context: PanelContext


_portal_panels: dict[str, Panel] = {}
_staff_member_panels: dict[str, Panel] = {}


def _register(
    registry: dict[str, Panel], *, name: str, order: int, template: str, context: PanelContext
) -> Panel:
    # Keyed by name, so a second ready() (tests, autoreload) replaces rather than duplicates.
    panel = Panel(name=name, order=order, template=template, context=context)
    registry[name] = panel
    return panel


def _render(registry: dict[str, Panel], *, member: Model, request: HttpRequest) -> list[SafeString]:
    rendered = []
    for panel in sorted(registry.values(), key=lambda p: (p.order, p.name)):
        context = panel.context(member, request)
        if context is None:
            continue
        context = {"member": member, **context}
        rendered.append(render_to_string(panel.template, context, request=request))
    return rendered


def portal_panel_register(*, name: str, order: int, template: str, context: PanelContext) -> Panel:
    """Add a panel to the member's portal home page (lower `order` first)."""
    return _register(_portal_panels, name=name, order=order, template=template, context=context)


def portal_panels_render(*, member: Model, request: HttpRequest) -> list[SafeString]:
    return _render(_portal_panels, member=member, request=request)


def staff_member_panel_register(
    *, name: str, order: int, template: str, context: PanelContext
) -> Panel:
    """Add a panel to the staff member 360 page (lower `order` first)."""
    return _register(
        _staff_member_panels, name=name, order=order, template=template, context=context
    )


def staff_member_panels_render(*, member: Model, request: HttpRequest) -> list[SafeString]:
    return _render(_staff_member_panels, member=member, request=request)
