"""Starting the sandboxes in-process and as `python -m sandbox`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import aiosmtplib

from sandbox.common import SandboxControl
from sandbox.runner import start_sandboxes

from .conftest import fetch_access_token

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_start_sandboxes_in_process(tmp_path: Path, reference_dir: Path) -> None:
    handles = await start_sandboxes(tmp_path, reference_dir=reference_dir, with_line=False)
    try:
        described = handles.describe()
        assert described["fcm"]["token_uri"] == described["fcm"]["url"] + "/token"
        account_file = Path(described["fcm"]["credentials_file"])
        account = json.loads(await asyncio.to_thread(account_file.read_text))
        assert account["token_uri"] == described["fcm"]["token_uri"]
        assert account["project_id"] == described["fcm"]["project_id"]
        # The key the runner wrote is registered, so its signature is really checked.
        assert account["private_key_id"] in handles.fcm.world.oauth.keys
        assert await fetch_access_token(Path(described["fcm"]["credentials_file"]))
        await aiosmtplib.send(
            "Subject: hi\r\n\r\nbody\r\n",
            sender="a@example.jp",
            recipients=["b@example.jp"],
            hostname=described["smtp"]["host"],
            port=described["smtp"]["port"],
        )
        assert handles.smtp.state.counters.get("delivered", "b@example.jp") == 1
    finally:
        await handles.stop()


async def test_python_m_sandbox_prints_one_json_line(tmp_path: Path, reference_dir: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--work-dir", str(tmp_path), "--no-limits",
        "--reference-dir", str(reference_dir), "--only", "fcm", "--only", "smtp",
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        described = json.loads(line)
        assert set(described) == {"fcm", "smtp"}
        async with aiohttp.ClientSession() as session:
            limits = await SandboxControl(described["fcm"]["url"], session).limits()
            assert limits["enabled"] is False
            smtp_control = SandboxControl(described["smtp"]["control_url"], session)
            assert await smtp_control.counters() == {}
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_the_line_sandbox_starts_with_the_others(tmp_path: Path, reference_dir: Path) -> None:
    handles = await start_sandboxes(
        tmp_path, reference_dir=reference_dir, with_smtp=False, limits_enabled=False
    )
    try:
        described = handles.describe()
        assert "line" in described, handles.notes
        line = described["line"]
        async with aiohttp.ClientSession() as session:
            limits = await SandboxControl(line["url"], session).limits()
            # LINE Login (the demo's LIFF form) runs on the same host, for a channel it names.
            body = {"userId": "U" + "0" * 32, "channelId": line["login_channel_id"]}
            async with session.post(line["url"] + "/_sandbox/login/tokens", json=body) as r:
                token = (await r.json())["access_token"]
            verify = line["url"] + "/oauth2/v2.1/verify"
            async with session.get(verify, params={"access_token": token}) as r:
                assert (await r.json())["client_id"] == line["login_channel_id"]
        assert limits["enabled"] is False
    finally:
        await handles.stop()
