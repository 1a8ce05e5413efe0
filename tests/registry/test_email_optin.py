"""Email double opt-in through a real SMTP server (the sandbox) and a burst arq worker."""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from notify.city import load_city
from notify.db import Database
from notify.models import AuditEntry, Endpoint, Resident
from notify.registry import jobs as registry_jobs
from notify.registry.email_optin import confirm_token
from notify.settings import Settings
from sandbox.smtp import SmtpSandbox
from tests.conftest import count_rows
from tests.plugins.workers import run_burst_worker
from tests.registry.conftest import hub_db
from worker import build_worker

ADDRESS = "hanako.kawasaki@example.jp"


async def _registry_startup(ctx: dict[str, Any]) -> None:
    ctx["city"] = load_city(ctx["settings"].city_config)
    ctx["db"] = Database.from_settings(ctx["settings"])


async def _registry_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].close()


async def run_worker(settings: Settings) -> None:
    """worker.py's worker, limited to this area's jobs (other areas' start-up is not ours)."""
    await run_burst_worker(
        settings,
        functions=registry_jobs.FUNCTIONS,
        on_startup=_registry_startup,
        on_shutdown=_registry_shutdown,
    )


async def subscribe(hub: TestClient[Any, Any], email: str = ADDRESS, **extra: Any) -> Any:
    return await hub.post("/api/email/subscribe", json={"email": email, **extra})


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


async def endpoint(hub: TestClient[Any, Any]) -> Endpoint:
    async with hub_db(hub).sessionmaker() as session:
        return (await session.execute(select(Endpoint))).scalar_one()


async def test_subscribe_sends_a_bilingual_confirmation_and_the_link_confirms(
    hub: TestClient[Any, Any], hub_settings: Settings, smtp: SmtpSandbox
) -> None:
    resp = await subscribe(hub, profile={"ward_code": "141313", "topics": ["garbage"]})
    assert resp.status == 202, await resp.text()
    assert (await endpoint(hub)).consent == "pending"
    await run_worker(hub_settings)

    assert len(smtp.mailbox.messages) == 1
    stored = smtp.mailbox.messages[0]
    assert stored.rcpt_tos == (ADDRESS,)
    mail = parse(stored.raw)
    assert str(mail["Subject"]).startswith("【川崎市】メール登録の確認")
    assert mail["To"] == ADDRESS and mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert text.index("登録") < text.index("confirm")  # Japanese first, then English
    links = re.findall(r"http://hub\.test/email/confirm\?t=[\w.\-]+", text)
    assert len(links) == 1 and links[0] in html.get_content()
    assert len(links[0]) < 100

    path = links[0].removeprefix("http://hub.test")
    resp = await hub.get(path)
    assert resp.status == 200
    page = await resp.text()
    assert resp.content_type == "text/html"
    assert page.index("登録が完了しました") < page.index("Subscription confirmed")
    row = await endpoint(hub)
    assert (row.consent, row.status) == ("granted", "active") and row.consent_at is not None
    async with hub_db(hub).sessionmaker() as session:
        resident = (await session.execute(select(Resident))).scalar_one()
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert resident.ward_code == "141313"
    assert actions == ["email.confirm"]

    # Confirming twice is harmless; subscribing again sends nothing and says the same.
    assert (await hub.get(path)).status == 200
    resp = await subscribe(hub)
    assert resp.status == 202
    await run_worker(hub_settings)
    assert len(smtp.mailbox.messages) == 1


async def test_expired_or_forged_links_do_not_confirm(
    hub: TestClient[Any, Any], hub_settings: Settings
) -> None:
    assert (await subscribe(hub)).status == 202
    row = await endpoint(hub)
    old = time.time() - hub_settings.email_confirm_ttl_s - 60
    expired = confirm_token(hub_settings, row.id, row.address, now=old)
    good = confirm_token(hub_settings, row.id, row.address)
    other_address = confirm_token(hub_settings, row.id, "someone@example.jp")
    endpoint_id, expires, mac = good.split(".")
    cases = {
        expired: 410,
        other_address: 400,
        f"{endpoint_id}.{int(expires) + 1}.{mac}": 400,  # stretched expiry
        f"{int(endpoint_id) + 1}.{expires}.{mac}": 400,
        "garbage": 400,
        "1.2": 400,
    }
    for token, status in cases.items():
        resp = await hub.get("/email/confirm", params={"t": token})
        assert resp.status == status, token
        assert resp.content_type == "text/html"
    resp = await hub.get("/email/confirm")
    assert resp.status == 422  # no token at all: the API's JSON error shape
    assert (await endpoint(hub)).consent == "pending"


async def test_one_click_unsubscribe_and_the_plain_page(hub: TestClient[Any, Any]) -> None:
    assert (await subscribe(hub)).status == 202
    row = await endpoint(hub)
    token = row.token
    assert token is not None and len(f"http://hub.test/u/{token}") < 75

    resp = await hub.get(f"/u/{token}")
    assert resp.status == 200
    page = await resp.text()
    body = page.split("<body>", 1)[1]
    assert body.index("配信を停止します") < body.index("Press the button")  # Japanese first
    assert f'action="/u/{token}"' in page and 'value="One-Click"' in page
    assert (await endpoint(hub)).consent == "pending"  # GET never changes anything

    resp = await hub.post(f"/u/{token}", data={"wrong": "x"})
    assert resp.status == 422
    assert "List-Unsubscribe" in (await resp.json())["error"]["fields"]

    # RFC 8058: what a mailbox provider sends.
    resp = await hub.post(
        f"/u/{token}",
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 200
    row = await endpoint(hub)
    assert row.consent == "withdrawn" and row.withdrawn_at is not None
    # Repeats (multipart form too) are fine and change nothing.
    form = aiohttp.FormData({"List-Unsubscribe": "One-Click"}, default_to_multipart=True)
    resp = await hub.post(f"/u/{token}", data=form)
    assert resp.status == 200
    assert "配信を停止しました" in await (await hub.get(f"/u/{token}")).text()
    async with hub_db(hub).sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions == ["endpoint.unsubscribe"]

    for bad in ("nosuchtoken1", "x", "../../etc"):
        resp = await hub.post(
            f"/u/{bad}",
            data=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status == 404, bad


async def test_resubscribing_after_unsubscribe_needs_a_new_confirmation(
    hub: TestClient[Any, Any], hub_settings: Settings, smtp: SmtpSandbox
) -> None:
    assert (await subscribe(hub)).status == 202
    await run_worker(hub_settings)
    token = (await endpoint(hub)).token
    await hub.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert (await subscribe(hub)).status == 202
    assert (await endpoint(hub)).consent == "pending"
    await run_worker(hub_settings)
    # One confirmation mail per address per 10 minutes, however often the form is sent.
    assert len(smtp.mailbox.messages) == 1
    assert await count_rows(hub_db(hub), "residents") == 1


async def test_bad_addresses_are_field_errors_and_write_nothing(hub: TestClient[Any, Any]) -> None:
    cases = {
        "taro＠example.jp": "全角の＠",
        "taro@gmail": "ドット",
        "taro@[127.0.0.1]": "IP",
        "(comment)taro@example.jp": "",
        "": "",
    }
    for address, hint in cases.items():
        resp = await subscribe(hub, address)
        assert resp.status == 422, address
        fields = (await resp.json())["error"]["fields"]
        assert "email" in fields and hint in fields["email"], (address, fields)
    resp = await subscribe(hub, profile={"ward_code": "999999"})
    assert resp.status == 422
    assert set((await resp.json())["error"]["fields"]) == {"ward_code"}
    assert await count_rows(hub_db(hub), "residents") == 0
    assert await count_rows(hub_db(hub), "endpoints") == 0


async def test_a_refused_address_is_pruned(
    hub: TestClient[Any, Any], hub_settings: Settings, smtp: SmtpSandbox
) -> None:
    smtp.mailbox.hard_bounces.add("nobody@example.jp")
    assert (await subscribe(hub, "nobody@example.jp")).status == 202
    await run_worker(hub_settings)
    row = await endpoint(hub)
    assert row.status == "pruned" and row.last_error and "550" in row.last_error


def test_worker_py_runs_the_registry_jobs(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, handle_signals=False)
    assert {"send_email_confirmation", "prune_webhook_events"} <= set(worker.functions)


async def test_international_address_goes_out_with_smtputf8(
    hub: TestClient[Any, Any], hub_settings: Settings, smtp: SmtpSandbox
) -> None:
    assert (await subscribe(hub, "山田@例え.jp")).status == 202
    await run_worker(hub_settings)
    [stored] = smtp.mailbox.messages
    assert stored.rcpt_tos == ("山田@xn--r8jz45g.jp",)
    assert parse(stored.raw)["To"] == "山田@xn--r8jz45g.jp"
