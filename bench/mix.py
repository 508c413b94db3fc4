"""The realistic mix: what a subscription's resources look like to the engine. Deterministic.

Every covered type from ``tests/fixtures/resources/`` (hardened and weak), and network
security groups the way people write them: 20 security rules each, with single ports,
port ranges, lists of ports and ranges, ``*``, service tags, CIDRs and lists of CIDRs.
A hardened group allows only known sources (or denies); a weak group hides a few
Internet-facing rules among ordinary ones.
"""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "resources"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
RULES_PER_NSG = 20
NSGS_PER_CYCLE = 10  # beside the 40 other fixtures: NSGs are a fifth of the resources, as in a typical estate

_TRUSTED = ["10.0.0.0/8", "172.16.0.0/12", "192.168.10.0/24", "198.51.100.0/24", "VirtualNetwork",
            "AzureLoadBalancer", "AzureFrontDoor.Backend", "GatewayManager", "203.0.113.17", "2001:db8::/32"]
_OPEN = ["*", "Internet", "0.0.0.0/0", "Any"]
_PORTS = ["443", "80", "8080-8090", "1433", "3306", "22", "3389", "5985-5986", "20-30", "1000-2000", "*",
          "5432", "6379-6380", "9000", "445", "135-139"]


def _security_rule(nsg_id: str, i: int, rng: random.Random, open_source: bool) -> dict:
    props = {"protocol": rng.choice(["Tcp", "Tcp", "Udp", "*", "Icmp"]), "sourcePortRange": "*",
             "destinationAddressPrefix": rng.choice(["*", "VirtualNetwork", "10.1.0.0/16"]),
             "access": rng.choice(["Allow", "Allow", "Allow", "Deny"]), "priority": 100 + 10 * i,
             "direction": rng.choice(["Inbound", "Inbound", "Inbound", "Outbound"]),
             "sourcePortRanges": [], "destinationPortRanges": [], "sourceAddressPrefixes": [],
             "destinationAddressPrefixes": []}
    if rng.random() < 0.35:
        props["sourceAddressPrefixes"] = rng.sample(_TRUSTED, 3) + ([rng.choice(_OPEN[:3])] if open_source else [])
    else:
        props["sourceAddressPrefix"] = rng.choice(_OPEN) if open_source else rng.choice(_TRUSTED)
    if rng.random() < 0.4:
        props["destinationPortRanges"] = rng.sample([p for p in _PORTS if p != "*"], rng.randint(2, 5))
    else:
        props["destinationPortRange"] = rng.choice(_PORTS)
    name = f"rule-{i:02d}"
    return {"name": name, "id": f"{nsg_id}/securityRules/{name}", "etag": 'W/"00000000-0000-0000-0000-000000000000"',
            "type": f"{NSG_TYPE}/securityRules", "properties": dict(props, provisioningState="Succeeded")}


def nsg(template: dict, number: int, weak: bool) -> dict:
    """A 20-rule group from the fixture's shape; a weak one has 2-4 rules open to the Internet."""
    rng = random.Random(number)
    out = copy.deepcopy(template)
    out["name"] = f"nsg-mix-{number}"
    out["id"] = out["id"].rsplit("/", 1)[0] + "/" + out["name"]
    opened = set(rng.sample(range(RULES_PER_NSG), rng.randint(2, 4))) if weak else set()
    out["properties"]["securityRules"] = [_security_rule(out["id"], i, rng, i in opened) for i in range(RULES_PER_NSG)]
    return out


def templates() -> list[dict]:
    """One cycle of the mix: each non-NSG fixture once and ``NSGS_PER_CYCLE`` 20-rule groups."""
    fixtures = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    others = [f for f in fixtures if f["type"] != NSG_TYPE]
    shape = next(f for f in fixtures if f["type"] == NSG_TYPE and "$related" in f)  # carries its flow-log data
    return others + [nsg(shape, n, weak=n % 2 == 1) for n in range(NSGS_PER_CYCLE)]


def label(resource: dict) -> str:
    """The per-type row a resource is reported under."""
    return resource["type"].removeprefix("Microsoft.")


def cycled(base: list[dict], size: int) -> list[dict]:
    """``size`` copies cycled from ``base``, each with its own id."""
    out = []
    for i in range(size):
        resource = copy.deepcopy(base[i % len(base)])
        resource["id"] = f"{resource['id']}-{i}"
        out.append(resource)
    return out


def corpus(size: int) -> list[dict]:
    """``size`` resources cycled from :func:`templates`, each with its own id."""
    return cycled(templates(), size)
