"""Azure Resource Manager resource ids: parsing, normalisation, tracked parent.

Pure: no I/O. ARM ids are case-insensitive, so two ids that differ only in case
name the same resource; ``ResourceId.key`` is the comparison form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_CONTROL_CHARS = re.compile(r"[\x00-\x1f]")
# Longest id accepted. ARM names are at most a few hundred characters; a longer "id" is a forgery, and
# would not fit the state store's bounded keys and properties.
MAX_ID_LENGTH = 4096

# Child types that are tracked resources in their own right (they have their own
# location and settings), so an event on them is evaluated against them, not
# against their parent. Lower case.
TRACKED_CHILD_TYPES = frozenset(
    {
        "microsoft.sql/servers/databases",
        "microsoft.sql/managedinstances/databases",
        "microsoft.web/sites/slots",
        "microsoft.synapse/workspaces/sqlpools",
    }
)

# Extension resources that are evaluated as themselves rather than as a
# setting of the resource they extend. Lower case.
STANDALONE_EXTENSION_TYPES = frozenset({"microsoft.authorization/roleassignments"})


class InvalidResourceId(ValueError):
    """The text is not an Azure Resource Manager resource id."""


_CANONICAL_WORDS = {"subscriptions": "subscriptions", "resourcegroups": "resourceGroups", "providers": "providers"}


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM id. ``value`` keeps the names' case; ``key`` is lower case."""

    value: str
    subscription_id: str
    resource_group: str | None
    resource_type: str  # e.g. Microsoft.Storage/storageAccounts/blobServices
    name: str

    @property
    def key(self) -> str:
        return self.value.lower()

    @property
    def namespace(self) -> str:
        return self.resource_type.split("/", 1)[0]

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.value


def parse_resource_id(text: object) -> ResourceId:
    """Parse and normalise an ARM id, or raise ``InvalidResourceId`` saying why."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidResourceId(f"resource id must be a non-empty string, got {text!r:.80}")
    raw = text.strip()
    if len(raw) > MAX_ID_LENGTH:
        raise InvalidResourceId(f"resource id is {len(raw)} characters long; at most {MAX_ID_LENGTH}: {raw!r:.200}")
    if not raw.startswith("/"):
        raise InvalidResourceId(f"resource id must start with '/subscriptions/': {raw!r:.200}")
    parts = raw.strip("/").split("/")
    if any(p == "" for p in parts):
        raise InvalidResourceId(f"resource id has an empty segment: {raw!r:.200}")
    dots = next((p for p in parts if p in (".", "..")), None)
    if dots is not None:
        raise InvalidResourceId(f"resource id has a '{dots}' segment (no ARM name is one): {raw!r:.200}")
    if _CONTROL_CHARS.search(raw):
        raise InvalidResourceId(f"resource id contains control characters: {raw!r:.200}")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise InvalidResourceId(f"resource id must start with '/subscriptions/{{id}}': {raw!r:.200}")
    subscription = parts[1]
    out = ["subscriptions", subscription]
    resource_group = None
    rest = parts[2:]
    if rest and rest[0].lower() == "resourcegroups":
        if len(rest) < 2:
            raise InvalidResourceId(f"resource id names no resource group: {raw!r:.200}")
        resource_group = rest[1]
        out += ["resourceGroups", resource_group]
        rest = rest[2:]
    if not rest:
        rtype = "Microsoft.Resources/resourceGroups" if resource_group else "Microsoft.Resources/subscriptions"
        name = resource_group or subscription
        return ResourceId("/" + "/".join(out), subscription, resource_group, rtype, name)
    rtype, name = None, None
    while rest:
        if rest[0].lower() != "providers" or len(rest) < 4:
            raise InvalidResourceId(
                f"expected '/providers/{{namespace}}/{{type}}/{{name}}' in resource id: {raw!r:.200}"
            )
        namespace, pairs = rest[1], rest[2:]
        # consume type/name pairs until the next nested 'providers'
        end = next((i for i in range(0, len(pairs), 2) if pairs[i].lower() == "providers"), len(pairs))
        segment = pairs[:end]
        if len(segment) % 2:
            raise InvalidResourceId(f"resource id has a type without a name: {raw!r:.200}")
        out += ["providers", namespace, *segment]
        rtype = namespace + "/" + "/".join(segment[0::2])
        name = "/".join(segment[1::2])
        rest = pairs[end:]
    return ResourceId("/" + "/".join(out), subscription, resource_group, rtype, name)


def tracked_resource(rid: ResourceId) -> ResourceId:
    """The resource whose compliance an event on ``rid`` changes.

    Child resources (``.../storageAccounts/sa/blobServices/default``) and
    extension resources (``.../vaults/kv/providers/Microsoft.Insights/
    diagnosticSettings/x``) are settings of the tracked resource they belong to.
    """
    parts = rid.value.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    # The first provider segment (the tracked resource's own provider) follows the scope.
    first = 4 if rid.resource_group is not None else 2
    if len(parts) <= first or lowered[first] != "providers":
        return rid
    # A nested 'providers' can only stand where a type would (names may be 'providers' too).
    nested = next((i for i in range(first + 4, len(parts), 2) if lowered[i] == "providers"), None)
    if nested is not None:
        ext_ns = parts[nested + 1] if nested + 1 < len(parts) else ""
        ext_type = f"{ext_ns}/{parts[nested + 2]}".lower() if nested + 2 < len(parts) else ""
        if ext_type in STANDALONE_EXTENSION_TYPES:
            return rid
        return tracked_resource(parse_resource_id("/" + "/".join(parts[:nested])))
    namespace = parts[first + 1]
    segment = parts[first + 2 :]
    # Walk down: keep the deepest prefix whose type is top-level or a tracked child.
    keep = 2
    for depth in range(4, len(segment) + 1, 2):
        child_type = (namespace + "/" + "/".join(segment[0:depth:2])).lower()
        if child_type in TRACKED_CHILD_TYPES:
            keep = depth
        else:
            break
    if keep == len(segment):
        return rid
    return parse_resource_id("/" + "/".join(parts[: first + 2 + keep]))
