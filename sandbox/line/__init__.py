"""LINE Messaging API simulator (API host and data host on one port).

`LineSandbox` runs it inside the current event loop; `python -m sandbox.line --port N` runs it
as its own process (the hub's workers and the benchmark talk to it over HTTP).

Enforced, as LINE does:
- every JSON body and query against messaging-api.yml / insight.yml (400 + `details`), plus
  rules the documents leave to prose: text ≤ 5,000 UTF-16 units, altText ≤ 1,500, user id
  format, rich menu size (800–2500 wide, ≥ 250 high, ≥ 1.45:1), ≤ 20 areas, images JPEG/PNG
  ≤ 1 MB and never replaced, a menu needs its image before it is shown or linked;
- bearer token (401); per-endpoint sliding-window rate limits, 429 without Retry-After
  (push 2,000/s, multicast 200/s, broadcast / narrowcast / each insight endpoint 60/h,
  richmenu/batch 3/h, rich menu create / delete 100/h, others 2,000/s);
- `X-Line-Retry-Key` (UUID; a repeat within 24 h gets 409 + `x-line-accepted-request-id`);
- blocked users silently not delivered; duplicate ids delivered once; monthly quota (429
  "You have reached your monthly limit."); at most 1,000 custom aggregation unit names a month
  (JST), 400 beyond; 1,000 rich menus and aliases;
- insight from what was really delivered: opens drawn with `open_probability` (seeded),
  unique per user and unit; values under 20 come back null; follower counts ready the day
  after (`insight_delay_days`); aggregation periods ≤ 30 days;
- LINE Login for the LIFF form (`login_routes`): `/oauth2/v2.1/verify`, `/oauth2/v2.1/revoke`
  and `/v2/profile` for user access tokens that `POST /_sandbox/login/tokens` issues per user
  and channel, with expiry (the sandbox clock) and revocation.

Not simulated: webhooks, reply tokens, group/room chats, audiences and narrowcast filters
(narrowcast reaches every follower, `limit.max` honoured), clicks and media plays (always
null), delivery delays (sends complete at once), demographic and rich menu insight, the
per-day message count endpoints, LINE Login's authorization flow and ID tokens, LINE's exact
wording of every error message.
"""

from .login_routes import SANDBOX_LOGIN_CHANNEL_ID
from .server import DEFAULT_SPEC_DIR, SANDBOX_TOKEN, LineSandbox
from .state import LineConfig

__all__ = [
    "DEFAULT_SPEC_DIR",
    "SANDBOX_LOGIN_CHANNEL_ID",
    "SANDBOX_TOKEN",
    "LineConfig",
    "LineSandbox",
]
