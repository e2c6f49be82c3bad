"""Writes of segments: create, update and archive, each validating the rules first."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import Segment
from members.models import User
from members.services import audit_log

from .rules import SegmentRuleError, segment_references, segment_rules_validate

NAME_MAX = Segment._meta.get_field("name").max_length


def _name_checked(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise SegmentRuleError(
            "bad_name", _("A segment needs a name of 1 to %(n)s characters.") % {"n": NAME_MAX}
        )
    return name


def segment_create(*, actor: User | None, name: str, description: str, rules: object) -> Segment:
    checked = segment_rules_validate(rules=rules)
    with transaction.atomic():
        segment = Segment.objects.create(
            name=_name_checked(name),
            description=(description or "").strip(),
            rules=checked,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_log(actor=actor, action="segment.create", target=segment, details={"rules": checked})
    return segment


def segment_update(
    *, segment: Segment, actor: User | None, name: str, description: str, rules: object
) -> Segment:
    checked = segment_rules_validate(rules=rules, segment_id=segment.pk)
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        segment.name = _name_checked(name)
        segment.description = (description or "").strip()
        segment.rules = checked
        segment.save()
        audit_log(actor=actor, action="segment.update", target=segment, details={"rules": checked})
    return segment


def segment_archive(*, segment: Segment, actor: User | None) -> Segment:
    """Hide a segment from new campaigns and new rules; campaigns and segments that use it
    keep working (its rules stay)."""
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        if not segment.is_archived:
            segment.is_archived = True
            segment.save(update_fields=["is_archived", "updated_at"])
            audit_log(actor=actor, action="segment.archive", target=segment)
    return segment


def segments_using(*, segment: Segment) -> list[Segment]:
    """The live segments whose rules use this one's membership."""
    return [
        other
        for other in Segment.objects.filter(is_archived=False).exclude(pk=segment.pk)
        if segment.pk in segment_references(rules=other.rules)
    ]
