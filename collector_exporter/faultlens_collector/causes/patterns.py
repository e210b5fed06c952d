"""The pattern of a failure group (seed 003's four failure patterns).

=================  ==============================================================
pattern            when
=================  ==============================================================
``cascade``        the group is marked a symptom of another group (its
                   ``root_fingerprint`` is set, :mod:`.links`) — whatever its
                   category: the fix is at the root
``timing``         category ``timeout`` or ``cancelled``: timeouts, deadlines,
                   cancelled work
``integration``    category ``attribute``, ``type``, ``import``,
                   ``configuration``, ``connection``, ``dependency``,
                   ``permission`` or ``resource``: components that do not fit
                   together — interface mismatches, missing methods, wrong
                   configuration, a dependency that is down or refuses, resources
                   a component did not get
``data_quality``   category ``value``, ``validation``, ``lookup`` or ``io``: the
                   data was wrong, missing or unreadable
(empty)            anything else: ``unknown``, ``halted`` (a refusal faultlens
                   itself caused) and categories users registered
=================  ==============================================================

The pattern follows the group's current category, so an operator who
re-categorizes a group changes its pattern too.
"""

from __future__ import annotations

from typing import Final

PATTERNS: Final = ("cascade", "timing", "integration", "data_quality")

_BY_CATEGORY: Final = {
    "timeout": "timing",
    "cancelled": "timing",
    "attribute": "integration",
    "type": "integration",
    "import": "integration",
    "configuration": "integration",
    "connection": "integration",
    "dependency": "integration",
    "permission": "integration",
    "resource": "integration",
    "value": "data_quality",
    "validation": "data_quality",
    "lookup": "data_quality",
    "io": "data_quality",
}


def pattern_of(category: str, root_fingerprint: str = "") -> str:
    """The pattern of a group with ``category``, marked a symptom of ``root_fingerprint``
    (empty: of none). See the module docstring; "" when no pattern applies."""
    if root_fingerprint:
        return "cascade"
    return _BY_CATEGORY.get(category, "")
