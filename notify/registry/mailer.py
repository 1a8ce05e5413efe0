"""The registry's own mail (the opt-in confirmation) and its small HTML pages.

The confirmation is one multipart/alternative message, Japanese first then English, plain
and HTML, sent with aiosmtplib to `settings.smtp_host:smtp_port`. Templates live in
templates/email/.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from functools import lru_cache
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from notify.city import CityConfig
from notify.errors import PermanentChannelError, TransientChannelError
from notify.settings import REPO_ROOT, Settings

TEMPLATES = REPO_ROOT / "templates" / "email"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


PAGES: dict[str, dict[str, str]] = {
    "confirmed": {
        "title_ja": "登録が完了しました",
        "title_en": "Subscription confirmed",
        "message_ja": (
            "お知らせメールの登録が完了しました。メール末尾のリンクからいつでも配信を停止できます。"
        ),
        "message_en": "You will now receive notices by email. Every mail has a link to stop them.",
    },
    "confirm_invalid": {
        "title_ja": "リンクが正しくありません",
        "title_en": "This link is not valid",
        "message_ja": (
            "確認リンクが正しくありません。"
            "メールのリンクをもう一度開くか、最初から登録し直してください。"
        ),
        "message_en": (
            "The confirmation link is not valid. "
            "Open the link in the mail again, or subscribe again."
        ),
    },
    "confirm_expired": {
        "title_ja": "リンクの有効期限が切れています",
        "title_en": "This link has expired",
        "message_ja": (
            "確認リンクの有効期限が切れました。お手数ですが、最初から登録し直してください。"
        ),
        "message_en": "The confirmation link has expired. Please subscribe again.",
    },
    "unsubscribe_form": {
        "title_ja": "配信停止",
        "title_en": "Unsubscribe",
        "message_ja": "下のボタンを押すと、このあて先へのお知らせの配信を停止します。",
        "message_en": "Press the button to stop notices to this address.",
        "button_ja": "配信を停止する",
        "button_en": "Unsubscribe",
    },
    "unsubscribed": {
        "title_ja": "配信を停止しました",
        "title_en": "Unsubscribed",
        "message_ja": "このあて先へのお知らせの配信を停止しました。",
        "message_en": "Notices to this address have been stopped.",
    },
    "unsubscribe_unknown": {
        "title_ja": "リンクが見つかりません",
        "title_en": "Link not found",
        "message_ja": (
            "この配信停止リンクは見つかりません。すでに登録が削除されている可能性があります。"
        ),
        "message_en": "This unsubscribe link is unknown; the registration may already be deleted.",
    },
}


def render_page(city: CityConfig, kind: str, **extra: str) -> str:
    context: dict[str, Any] = {
        "button_ja": "",
        "button_en": "",
        "form_action": "",
        **PAGES[kind],
        **extra,
        "city_ja": city.city.name.ja,
        "city_en": city.city.name.en,
    }
    return _env().get_template("page.html.j2").render(context)


def build_confirmation(
    settings: Settings, city: CityConfig, to: str, url: str, *, smtputf8: bool, now: dt.datetime
) -> EmailMessage:
    valid_until = (now + dt.timedelta(seconds=settings.email_confirm_ttl_s)).astimezone(city.tz)
    subject = f"【{city.city.name.ja}】メール登録の確認 / Please confirm your subscription"
    context = {
        "subject": subject,
        "confirm_url": url,
        "city_ja": city.city.name.ja,
        "city_en": city.city.name.en,
        "valid_until_ja": valid_until.strftime("%Y年%m月%d日 %H:%M"),
        "valid_until_en": valid_until.strftime("%Y-%m-%d %H:%M %Z"),
    }
    message = EmailMessage(policy=SMTPUTF8 if smtputf8 else SMTP)
    message["Subject"] = subject
    message["From"] = settings.mail_from
    message["To"] = to
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid(domain=settings.mail_from.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(_env().get_template("confirm.txt.j2").render(context))
    message.add_alternative(_env().get_template("confirm.html.j2").render(context), subtype="html")
    return message


async def send_mail(settings: Settings, message: EmailMessage) -> None:
    """Send one message; provider errors become the project's channel errors."""
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=True if settings.smtp_tls == "starttls" else False,
            timeout=30,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [err.code for err in exc.recipients]
        if all(500 <= code < 600 for code in codes):
            raise PermanentChannelError(
                f"recipient refused: {codes}", provider_code=str(codes[0])
            ) from exc
        raise TransientChannelError(f"recipient deferred: {codes}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600:
            raise PermanentChannelError(
                f"SMTP {exc.code}: {exc.message}", provider_code=str(exc.code)
            ) from exc
        raise TransientChannelError(f"SMTP {exc.code}: {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise TransientChannelError(f"SMTP unavailable: {type(exc).__name__}: {exc}") from exc
