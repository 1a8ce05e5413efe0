"""Recognise mail privacy proxies that fetch every image whether or not a person reads.

Apple Mail Privacy Protection preloads remote images through Apple's relays with the bare
user agent "Mozilla/5.0"; Gmail and Yahoo fetch them through their image proxies, which name
themselves. Such fetches are stored as `proxy_open`, reported beside opens, never as opens.
The lists are deliberately small and explicit; extend them when a new proxy shows up.
"""

from __future__ import annotations

import ipaddress

PROXY_AGENT_MARKERS = (
    "googleimageproxy",  # Gmail: "Mozilla/5.0 (...) (via ggpht.com GoogleImageProxy)"
    "ggpht.com",
    "yahoomailproxy",  # Yahoo Mail
    "apple-mail-privacy",
)
BARE_AGENTS = frozenset({"mozilla/5.0", ""})  # Apple MPP's preload sends just "Mozilla/5.0"
PROXY_NETWORKS = (
    ipaddress.ip_network("17.0.0.0/8"),  # Apple
    ipaddress.ip_network("66.249.80.0/20"),  # Google image proxy
    ipaddress.ip_network("2620:149::/32"),  # Apple IPv6
)


def is_privacy_proxy(user_agent: str | None, remote_ip: str | None) -> bool:
    agent = (user_agent or "").strip().lower()
    if agent in BARE_AGENTS or any(marker in agent for marker in PROXY_AGENT_MARKERS):
        return True
    if remote_ip:
        try:
            address = ipaddress.ip_address(remote_ip)
        except ValueError:
            return False
        return any(address in network for network in PROXY_NETWORKS)
    return False
