"""The explicit channel registry: settings → one adapter instance per configured channel.

A channel whose credentials are not configured is left out (the delivery engine reports its
recipients as not deliverable) rather than failing at the first send. Adapters open their
connections lazily, so building them does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.base import Channel, ChannelName
from notify.settings import Settings


def _line(settings: Settings) -> Channel | None:
    if not settings.line_channel_access_token:
        return None
    from channels.line import LineChannel  # line-bot-sdk is heavy: import it only when used

    channel: Channel = LineChannel(
        api_url=settings.line_api_url,
        data_url=settings.line_data_url,
        channel_access_token=settings.line_channel_access_token,
    )
    return channel


def _fcm(settings: Settings) -> Channel | None:
    if settings.fcm_credentials_file is None:
        return None
    from channels.fcm import FcmChannel

    return FcmChannel(
        api_url=settings.fcm_api_url,
        project_id=settings.fcm_project_id,
        credentials_file=settings.fcm_credentials_file,
    )


def _email(settings: Settings) -> Channel | None:
    if not settings.smtp_host or not settings.mail_from:
        return None
    from channels.email import EmailChannel

    return EmailChannel(
        host=settings.smtp_host,
        port=settings.smtp_port,
        mail_from=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        tls=settings.smtp_tls,
        connections=settings.smtp_connections,
        helo_name=settings.smtp_helo_name,
    )


BUILDERS: dict[ChannelName, Any] = {
    ChannelName.LINE: _line,
    ChannelName.FCM: _fcm,
    ChannelName.EMAIL: _email,
}


def build_channels(
    settings: Settings, *, only: Iterable[ChannelName] | None = None
) -> dict[ChannelName, Channel]:
    wanted = set(only) if only is not None else set(BUILDERS)
    channels: dict[ChannelName, Channel] = {}
    for name in ChannelName:
        if name in wanted and (adapter := BUILDERS[name](settings)) is not None:
            channels[name] = adapter
    return channels
