"""ADL policies behind one plug-in interface.

Public names: :class:`Snapshot`, :class:`Allocation`, :class:`ADLPolicy` (the base class of
every rule), :func:`execute` (wealth space to whole lots), :data:`POLICIES`,
:func:`get_policy`, :func:`check_adl_policy` (the conformance checker users run on their own
rules), the eligibility configuration and the severity controllers.
"""

from market.adl.base import KNOWN_PROPERTIES, ADLPolicy, Allocation, Snapshot, execute, water_fill
from market.adl.eligibility import Eligibility
from market.adl.registry import (
    POLICIES,
    describe_policies,
    get_policy,
    policy_class,
    policy_label,
    split_policy,
)
from market.adl.severity import SEVERITIES, SeverityController, WaveOutcome, WaveState, get_severity

__all__ = [
    "KNOWN_PROPERTIES",
    "POLICIES",
    "SEVERITIES",
    "ADLPolicy",
    "Allocation",
    "Eligibility",
    "SeverityController",
    "Snapshot",
    "WaveOutcome",
    "WaveState",
    "check_adl_policy",
    "describe_policies",
    "execute",
    "get_policy",
    "get_severity",
    "policy_class",
    "policy_label",
    "split_policy",
    "water_fill",
]


def __getattr__(name: str):
    """Load the conformance checker lazily (it imports hypothesis)."""
    if name in ("check_adl_policy", "PolicyCheckError", "PolicyCheckReport"):
        from market.adl import checker

        return getattr(checker, name)
    raise AttributeError(name)
