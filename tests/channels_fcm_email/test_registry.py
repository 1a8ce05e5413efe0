"""Settings → adapters, and the adapters from the registry reach the sandboxes."""

from __future__ import annotations

from channels.base import ChannelName, EmailMessage, Outcome, PushMessage, Recipient, SendContext
from channels.email import EmailChannel
from channels.fcm import FcmChannel
from channels.registry import build_channels
from notify.settings import Settings


async def test_configured_channels_only_and_they_work(fcm, account, smtp) -> None:
    settings = Settings(
        fcm_api_url=fcm.url,
        fcm_project_id="",  # taken from the service-account file
        fcm_credentials_file=account.path,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        line_channel_access_token="",
    )
    channels = build_channels(settings)
    try:
        assert set(channels) == {ChannelName.FCM, ChannelName.EMAIL}
        assert isinstance(channels[ChannelName.FCM], FcmChannel)
        assert isinstance(channels[ChannelName.EMAIL], EmailChannel)
        context = SendContext(broadcast_id=1)
        push = await channels[ChannelName.FCM].send_batch(
            [Recipient(1, "dev:APA91b-registry")], PushMessage("t", "b"), context
        )
        mail = await channels[ChannelName.EMAIL].send_batch(
            [Recipient(2, "a@example.jp")], EmailMessage("件名", "本文"), context
        )
        assert [push[0].outcome, mail[0].outcome] == [Outcome.SENT, Outcome.SENT]
        assert fcm.state.counters.get("delivered", "dev:APA91b-registry") == 1
        assert smtp.state.counters.get("delivered", "a@example.jp") == 1
    finally:
        for adapter in channels.values():
            await adapter.close()


def test_line_is_built_when_it_has_a_token() -> None:
    settings = Settings(line_channel_access_token="token", fcm_credentials_file=None)
    channels = build_channels(settings, only=[ChannelName.LINE, ChannelName.FCM])
    assert set(channels) == {ChannelName.LINE}
    assert type(channels[ChannelName.LINE]).__name__ == "LineChannel"
