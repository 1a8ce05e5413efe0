"""Email bounce intake: a DSN from the real SMTP sandbox, posted to the hub, prunes the endpoint
and lowers the broadcast's email "delivered"; soft bounces, forged headers, bad bodies, roles,
and the `python -m notify bounce` pipe command."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from channels.base import ChannelName, EmailMessage, Outcome, Recipient, SendContext
from channels.email_bounces import MAX_BOUNCE_BYTES
from channels.registry import build_channels
from notify.db import Database
from notify.models import AuditEntry, Endpoint
from notify.settings import REPO_ROOT, Settings
from notify.stats.tables import EmailBounce
from notify.web.keys import DB
from sandbox.smtp import SmtpSandbox, build_dsn
from tests.api_contract.contract import ContractClient
from tests.stats.conftest import Target, add_deliveries, make_broadcast, make_targets

H = dict[str, dict[str, str]]
BOUNCES = "/api/email/bounces"
MAIL_FROM = "info@city.example.jp"
RFC822 = "message/rfc822"


# --- helpers ---------------------------------------------------------------------------------


class Intake(NamedTuple):
    """What most tests here start from: the hub's database, the contract client, an admin's
    headers and an email broadcast."""

    db: Database
    contract: ContractClient
    admin: dict[str, str]
    broadcast_id: int


@pytest.fixture
async def intake(client: TestClient[Any, Any], staff_headers: H) -> Intake:
    db: Database = client.server.app[DB]
    broadcast_id = await make_broadcast(db, channels=("email",))
    return Intake(db, await ContractClient.load(client), staff_headers["admin"], broadcast_id)


async def send_through_sandbox(
    db: Database, settings: Settings, smtp: SmtpSandbox, broadcast_id: int, targets: list[Target]
) -> None:
    """What the delivery engine does for one email batch: its channel adapter, then the rows."""
    smtp_settings = settings.model_copy(
        update={"smtp_host": smtp.host, "smtp_port": smtp.port, "mail_from": MAIL_FROM}
    )
    channel = build_channels(smtp_settings, only=[ChannelName.EMAIL])[ChannelName.EMAIL]
    recipients = [Recipient(endpoint_id=t.endpoint_id, address=t.address) for t in targets]
    results = await channel.send_batch(
        recipients, EmailMessage("健診のお知らせ", "日程です。"), SendContext(broadcast_id)
    )
    await channel.close()
    assert [r.outcome for r in results] == [Outcome.SENT] * len(targets)
    await add_deliveries(db, broadcast_id, targets)


async def fetch_dsns(smtp: SmtpSandbox, expected: int) -> list[bytes]:
    """The DSNs the sandbox mailed back to the envelope sender, through its HTTP control side."""
    base = f"{smtp.control_url}/_sandbox/smtp/messages"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.get(base, params={"recipient": MAIL_FROM}) as resp:
                found = [m for m in (await resp.json())["messages"] if m["kind"] == "dsn"]
            if len(found) >= expected:
                break
            await asyncio.sleep(0.02)
        assert len(found) == expected, found
        raws = []
        for summary in found:
            async with http.get(f"{base}/{summary['id']}/raw") as resp:
                assert resp.content_type == RFC822
                raws.append(await resp.read())
    return raws


def sent_copy(smtp: SmtpSandbox, address: str) -> Any:
    return next(m for m in smtp.mailbox.messages if m.kind == "message" and address in m.rcpt_tos)


async def endpoint_states(db: Database) -> dict[int, str]:
    async with db.sessionmaker() as session:
        rows = await session.execute(select(Endpoint.id, Endpoint.status))
    return {endpoint_id: status for endpoint_id, status in rows}


async def audit_count(db: Database) -> int:
    async with db.sessionmaker() as session:
        query = select(func.count()).where(AuditEntry.action == "email.bounce")
        return int((await session.execute(query)).scalar_one())


async def email_figures(contract: ContractClient, admin: dict[str, str], broadcast_id: int) -> Any:
    stats = await contract.expect(
        200, "GET", f"/api/stats/broadcasts/{broadcast_id}", headers=admin
    )
    return next(f for f in stats["channels"] if f["channel"] == "email")


async def post_bounce(contract: ContractClient, admin: dict[str, str], raw: bytes) -> Any:
    return await contract.expect(200, "POST", BOUNCES, headers=admin, raw=raw, content_type=RFC822)


# --- end to end ------------------------------------------------------------------------------


async def test_a_sandbox_dsn_prunes_the_endpoint_and_lowers_delivered_once(
    intake: Intake, settings: Settings, smtp: SmtpSandbox
) -> None:
    db, contract, admin, broadcast_id = intake
    targets = await make_targets(db, "email", 3)
    gone = targets[0]
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{smtp.control_url}/_sandbox/smtp/bounces", json={"dsn": [gone.address]}
        )
        assert resp.status == 200
    await send_through_sandbox(db, settings, smtp, broadcast_id, targets)
    before = await email_figures(contract, admin, broadcast_id)
    assert (before["sent"], before["bounced"], before["delivered"]) == (3, 0, 3)

    [dsn] = await fetch_dsns(smtp, 1)
    body = await post_bounce(contract, admin, dsn)

    assert body == {
        "action": "pruned",
        "kind": "hard",
        "recipient": gone.address,
        "status": "5.1.1",
        "endpoint_id": gone.endpoint_id,
        "matched_by": "endpoint_header",
        "broadcast_id": broadcast_id,
        "pruned": True,
        "recorded": True,
    }
    states = await endpoint_states(db)
    assert states[gone.endpoint_id] == "pruned"
    assert [states[t.endpoint_id] for t in targets[1:]] == ["active", "active"]
    async with db.sessionmaker() as session:
        endpoint = await session.get(Endpoint, gone.endpoint_id)
        assert endpoint is not None and endpoint.last_error == "HARD_BOUNCE 5.1.1"
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "email.bounce"))
        ).scalar_one()
    assert (entry.actor_type, entry.target_id) == ("staff", str(gone.endpoint_id))
    assert entry.detail["broadcast_id"] == broadcast_id and entry.detail["pruned"] is True
    after = await email_figures(contract, admin, broadcast_id)
    assert (after["sent"], after["bounced"], after["delivered"]) == (3, 1, 2)

    again = await post_bounce(contract, admin, dsn)  # the MTA (or provider) sends it twice
    assert (again["action"], again["pruned"], again["recorded"]) == ("unchanged", False, False)
    assert await audit_count(db) == 1
    assert (await email_figures(contract, admin, broadcast_id))["delivered"] == 2


async def test_a_soft_bounce_counts_but_never_prunes(
    intake: Intake,
    settings: Settings,
    smtp: SmtpSandbox,
    reference_dir: Path,
) -> None:
    db, contract, admin, broadcast_id = intake
    [full] = await make_targets(db, "email", 1)
    await send_through_sandbox(db, settings, smtp, broadcast_id, [full])
    mailbox_full = (
        build_dsn(sent_copy(smtp, full.address), full.address, "mx.example.jp")
        .replace(b"Status: 5.1.1", b"Status: 5.2.2")
        .replace(b"550 5.1.1 The email account that you tried to reach does not exist",
                 b"552 5.2.2 Mailbox full")
    )  # fmt: skip

    body = await post_bounce(contract, admin, mailbox_full)
    assert (body["kind"], body["action"], body["pruned"]) == ("soft", "recorded", False)
    assert (await endpoint_states(db))[full.endpoint_id] == "active"
    async with db.sessionmaker() as session:
        stored = (await session.execute(select(EmailBounce))).scalar_one()
    assert (stored.endpoint_id, stored.permanent) == (full.endpoint_id, False)

    # A real soft bounce (au / KDDI, mailbox full) without the hub's headers: nothing to count.
    kddi = (reference_dir / "email" / "bounces" / "lhost-kddi-01.eml").read_bytes()
    async with db.transaction() as session:
        session.add(
            Endpoint(
                resident_id=full.resident_id,
                channel="email",
                address="kijitora@x0000000000000.dion.ne.jp",
                consent="granted",
            )
        )
    body = await post_bounce(contract, admin, kddi)
    assert (body["kind"], body["action"], body["matched_by"]) == ("soft", "unchanged", "address")
    assert set((await endpoint_states(db)).values()) == {"active"}

    # The hard bounce that follows prunes and makes the stored bounce permanent.
    hard = build_dsn(sent_copy(smtp, full.address), full.address, "mx.example.jp")
    body = await post_bounce(contract, admin, hard)
    assert (body["action"], body["pruned"], body["recorded"]) == ("pruned", True, True)
    async with db.sessionmaker() as session:
        stored = (await session.execute(select(EmailBounce))).scalar_one()
    assert stored.permanent is True
    assert await audit_count(db) == 2


async def test_a_complaint_prunes_but_the_mail_still_counts_as_delivered(
    intake: Intake, reference_dir: Path
) -> None:
    db, contract, admin, broadcast_id = intake
    [target] = await make_targets(db, "email", 1)
    async with db.transaction() as session:
        endpoint = await session.get(Endpoint, target.endpoint_id)
        assert endpoint is not None
        endpoint.address = "redacted@example.net"  # arf-01.eml's complaining recipient
    await add_deliveries(db, broadcast_id, [target])
    arf = (reference_dir / "email" / "bounces" / "arf-01.eml").read_bytes()
    ours = arf.replace(  # as if the copy were of our mail: the hub's headers returned
        b"To: redacted@example.net\n",
        b"To: redacted@example.net\nX-Broadcast-Id: %d\nX-Endpoint-Id: %d\n"
        % (broadcast_id, target.endpoint_id),
    )
    assert ours != arf

    body = await post_bounce(contract, admin, ours)
    assert (body["kind"], body["action"], body["matched_by"]) == (
        "complaint",
        "pruned",
        "endpoint_header",
    )
    assert (body["broadcast_id"], body["recorded"]) == (broadcast_id, False)
    assert (await endpoint_states(db))[target.endpoint_id] == "pruned"
    figures = await email_figures(contract, admin, broadcast_id)
    assert (figures["bounced"], figures["delivered"]) == (0, 1)
    async with db.sessionmaker() as session:
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "email.bounce"))
        ).scalar_one()
    assert entry.detail["kind"] == "complaint"


async def test_forged_endpoint_and_broadcast_headers_are_not_believed(
    intake: Intake, settings: Settings, smtp: SmtpSandbox
) -> None:
    db, contract, admin, broadcast_id = intake
    victim, attacker = await make_targets(db, "email", 2)
    await send_through_sandbox(db, settings, smtp, broadcast_id, [victim, attacker])
    own = build_dsn(sent_copy(smtp, attacker.address), attacker.address, "mx.example.jp")
    forged = own.replace(
        f"X-Endpoint-Id: {attacker.endpoint_id}".encode(),
        f"X-Endpoint-Id: {victim.endpoint_id}".encode(),
    )
    assert forged != own

    body = await post_bounce(contract, admin, forged)
    # The header named the victim, but the bounce is about the attacker's own address.
    assert (body["endpoint_id"], body["matched_by"]) == (attacker.endpoint_id, "address")
    states = await endpoint_states(db)
    assert (states[victim.endpoint_id], states[attacker.endpoint_id]) == ("active", "pruned")

    # A stranger's address with the victim's id, and a broadcast that never sent to anyone.
    stranger = forged.replace(attacker.address.encode(), b"stranger@example.org").replace(
        f"X-Broadcast-Id: {broadcast_id}".encode(), b"X-Broadcast-Id: 987654"
    )
    body = await post_bounce(contract, admin, stranger)
    assert (body["action"], body["endpoint_id"], body["broadcast_id"]) == ("unmatched", None, None)
    assert (await endpoint_states(db))[victim.endpoint_id] == "active"
    async with db.sessionmaker() as session:
        assert (await session.execute(select(func.count(EmailBounce.id)))).scalar_one() == 1


async def test_bad_bodies_and_roles_are_refused_with_nothing_written(
    client: TestClient[Any, Any], staff_headers: H, reference_dir: Path
) -> None:
    db: Database = client.server.app[DB]
    contract = await ContractClient.load(client)
    admin = staff_headers["admin"]
    [target] = await make_targets(db, "email", 1)
    real = (reference_dir / "email" / "bounces" / "rfc3464-01.eml").read_bytes()

    for raw, status, code in (
        (b"\x00\xff" * 100, 422, "invalid_input"),
        (b"", 422, "invalid_input"),
        (
            b"From: a@example.jp\r\nSubject: hello\r\n\r\nSee you tomorrow.\r\n",
            422,
            "invalid_input",
        ),
        (b"Content-Type: multipart/report\r\n\r\n", 422, "invalid_input"),
    ):
        body = await contract.expect(
            status, "POST", BOUNCES, headers=admin, raw=raw, content_type=RFC822
        )
        assert body["error"]["code"] == code, raw[:40]
        assert body["error"]["message"]
    for oversize in (io.BytesIO(b"X" * (MAX_BOUNCE_BYTES + 1)), chunked(MAX_BOUNCE_BYTES + 1)):
        # with a Content-Length, and streamed without one
        resp = await client.post(BOUNCES, data=oversize, headers={**admin, "Content-Type": RFC822})
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"
    assert "413" in contract.operation("POST", BOUNCES).spec["responses"]
    body = await contract.expect(
        415, "POST", BOUNCES, headers=admin, raw=real, content_type="application/json"
    )
    assert "message/rfc822" in body["error"]["message"]
    await contract.expect(
        200, "POST", BOUNCES, headers=admin, raw=real, content_type="application/octet-stream"
    )  # accepted as a webhook body too (an unknown recipient here: nothing to do)
    await contract.expect(401, "POST", BOUNCES, raw=real, content_type=RFC822)
    for role in ("analyst", "pr", "disaster"):
        await contract.expect(
            403, "POST", BOUNCES, headers=staff_headers[role], raw=real, content_type=RFC822
        )
    assert set((await endpoint_states(db)).values()) == {"active"}
    assert await audit_count(db) == 0
    assert target.endpoint_id in await endpoint_states(db)


async def chunked(size: int) -> AsyncIterator[bytes]:
    for _ in range(0, size, 65536):
        yield b"X" * 65536


# --- the pipe command ------------------------------------------------------------------------


async def run_cli(settings: Settings, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
        "DATABASE_URL": settings.database_url or "",
        "HUB_DATA_DIR": str(settings.data_dir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notify", "bounce", *args,
        cwd=REPO_ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_reads_a_real_dsn_file_and_refuses_garbage_on_stdin(
    database: Database, settings: Settings, reference_dir: Path
) -> None:
    [target] = await make_targets(database, "email", 1)
    async with database.transaction() as session:
        endpoint = await session.get(Endpoint, target.endpoint_id)
        assert endpoint is not None
        endpoint.address = "userunknown@bouncehammer.jp"  # rfc3464-01.eml's failed recipient
    path = reference_dir / "email" / "bounces" / "rfc3464-01.eml"

    code, out, err = await run_cli(settings, str(path))
    assert (code, err) == (0, ""), err
    assert out.strip() == f"hard bounce (5.1.1) for endpoint {target.endpoint_id}: pruned"
    assert (await endpoint_states(database))[target.endpoint_id] == "pruned"

    code, out, _ = await run_cli(settings, stdin=path.read_bytes())  # stdin, and a repeat
    assert code == 0 and out.strip().endswith(": unchanged")

    code, out, err = await run_cli(settings, stdin=b"\x00\xff garbage")
    assert code == 65 and out == ""
    assert len(err.strip().splitlines()) == 1 and "not a bounce" in err
    code, _, err = await run_cli(settings, str(path.with_name("missing.eml")))
    assert code == 65 and len(err.strip().splitlines()) == 1
    assert await audit_count(database) == 1
