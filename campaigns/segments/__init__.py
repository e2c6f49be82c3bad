"""Segments: rule trees over members (fields.py, rules.py), compiled to one SQL query
(compiler.py), counted, funnelled and sampled (selectors.py), stored by services.py."""

from .compiler import segment_members_sql
from .rules import SegmentRuleError, segment_rules_validate
from .selectors import SegmentFunnel, segment_count, segment_funnel, segment_sample
from .services import segment_archive, segment_create, segment_update

__all__ = [
    "SegmentFunnel",
    "SegmentRuleError",
    "segment_archive",
    "segment_count",
    "segment_create",
    "segment_funnel",
    "segment_members_sql",
    "segment_rules_validate",
    "segment_sample",
    "segment_update",
]
