"""Start the provider sandboxes in-process, and write throwaway service-account files.

Used by tests (in-process), by `python -m sandbox` (one process for the demo hub and the
benchmarks) and by the hub's demo mode.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.fcm import FcmSandbox

# The shared third-party reference material sits beside the repository (never copied into it).
DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "reference"
DEFAULT_PROJECT_ID = "city-notify-sandbox"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    path: Path
    client_email: str
    key_id: str
    public_key_pem: str
    project_id: str


def write_service_account(
    path: Path, token_uri: str, project_id: str = DEFAULT_PROJECT_ID
) -> ServiceAccount:
    """A service-account JSON with a fresh RSA key, whose `token_uri` is the sandbox's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_id = uuid.uuid4().hex
    email = f"hub-sender@{project_id}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(uuid.uuid4().int)[:21],
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return ServiceAccount(path, email, key_id, public_pem, project_id)


def register_service_account(sandbox: FcmSandbox, account: ServiceAccount) -> None:
    sandbox.world.oauth.register_key(account.key_id, account.public_key_pem.encode())


@dataclass(slots=True)
class SandboxHandles:
    fcm: FcmSandbox
    service_account: ServiceAccount
    smtp: Any = None  # sandbox.smtp.SmtpSandbox
    line: Any = None  # sandbox.line.LineSandbox when that package exists
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fcm": {
                "url": self.fcm.url,
                "token_uri": self.fcm.token_uri,
                "project_id": self.service_account.project_id,
                "credentials_file": str(self.service_account.path),
            }
        }
        if self.smtp is not None:
            out["smtp"] = self.smtp.describe()
        if self.line is not None:
            out["line"] = {"url": self.line.url}
            line_module = sys.modules.get("sandbox.line")
            token = getattr(line_module, "SANDBOX_TOKEN", None)
            if token:
                out["line"]["access_token"] = token
            login_channel = getattr(line_module, "SANDBOX_LOGIN_CHANNEL_ID", None)
            if login_channel:  # LINE Login (LIFF) runs on the same host
                out["line"]["login_channel_id"] = login_channel
        if self.notes:
            out["notes"] = self.notes
        return out

    async def stop(self) -> None:
        for sandbox in (self.line, self.smtp, self.fcm):
            if sandbox is not None:
                await sandbox.stop()


async def start_sandboxes(
    work_dir: Path,
    *,
    reference_dir: Path = DEFAULT_REFERENCE_DIR,
    project_id: str = DEFAULT_PROJECT_ID,
    limits_enabled: bool = True,
    with_smtp: bool = True,
    with_line: bool = True,
    host: str = "127.0.0.1",
    fcm_port: int = 0,
    smtp_port: int = 0,
    mail_readers: tuple[float, float] = (0.0, 0.0),
) -> SandboxHandles:
    """Start every sandbox on free ports of 127.0.0.1 inside the running event loop.

    `mail_readers`: (share of delivered mails opened, share of those clicked) by simulated
    readers (`sandbox.smtp_reader`); off unless asked for (the demo does).
    """
    fcm = FcmSandbox(
        reference_dir / "fcm" / "fcm.v1.json",
        project_id=project_id,
        limits={"enabled": limits_enabled},
        port=fcm_port,
    )
    await fcm.start()
    account = await asyncio.to_thread(  # RSA key generation: ~0.1 s of CPU
        write_service_account, work_dir / "fcm-service-account.json", fcm.token_uri, project_id
    )
    register_service_account(fcm, account)
    handles = SandboxHandles(fcm=fcm, service_account=account)
    if with_smtp:
        from sandbox.smtp import SmtpSandbox

        opened, clicked = mail_readers
        handles.smtp = SmtpSandbox(
            host=host,
            port=smtp_port,
            limits={
                "enabled": limits_enabled,
                "reader_open_share": opened,
                "reader_click_share": clicked,
            },
        )
        await handles.smtp.start()
    if with_line:
        if importlib.util.find_spec("sandbox.line") is None:
            handles.notes.append("sandbox.line is not there yet: LINE sandbox skipped")
        else:
            line_module = importlib.import_module("sandbox.line")
            handles.line = _make_line(line_module, reference_dir, limits_enabled)
            await handles.line.start()
    return handles


def _make_line(module: Any, reference_dir: Path, limits_enabled: bool) -> Any:
    """The LINE sandbox is built by another module; pass what its constructor accepts."""
    import inspect

    cls = module.LineSandbox
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    if "spec_dir" in params:
        kwargs["spec_dir"] = reference_dir / "line-openapi"
    if "rate_limits" in params:
        kwargs["rate_limits"] = limits_enabled
    return cls(**kwargs)
