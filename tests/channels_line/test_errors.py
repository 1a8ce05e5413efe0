"""Every error line-bot-sdk (and aiohttp under it) can raise leaves as one of ours.

Real errors are driven through the simulator's fault injection; the SDK's exception
subclasses the async client never raises itself are built and translated directly.
"""

from __future__ import annotations

import inspect

import aiohttp
import pydantic.v1
import pytest
from linebot.v3 import insight as line_insight
from linebot.v3 import messaging as line_messaging
from linebot.v3.insight import exceptions as insight_exceptions
from linebot.v3.messaging import exceptions as messaging_exceptions

from channels.line import LineChannel, translate_error
from channels.line_sdk import sdk_model
from notify.errors import (
    AlreadyAccepted,
    ChannelError,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)
from sandbox.line import SANDBOX_TOKEN, LineSandbox

from .helpers import Line

EXPECTED = {
    400: (PermanentChannelError, "http_400"),
    403: (PermanentChannelError, "http_403"),
    404: (PermanentChannelError, "http_404"),
    409: (AlreadyAccepted, None),
    413: (PermanentChannelError, "http_413"),
    415: (PermanentChannelError, "http_415"),
    429: (RateLimited, "rate_limited"),
    500: (TransientChannelError, "http_500"),
    502: (TransientChannelError, "http_502"),
    503: (TransientChannelError, "http_503"),
    504: (TransientChannelError, "http_504"),
}


@pytest.mark.parametrize("status", sorted(EXPECTED))
@pytest.mark.parametrize("call", ["list_rich_menus", "aggregation_unit_usage", "follower_stats"])
async def test_http_errors_from_both_sdk_packages(
    channel: LineChannel, line: Line, status: int, call: str
) -> None:
    await line.control("POST", "faults/next", json={"status": status})
    expected, code = EXPECTED[status]
    with pytest.raises(ChannelError) as caught:
        if call == "follower_stats":  # the insight package has its own ApiException
            await channel.follower_statistics()
        else:
            await getattr(channel, call)()
    assert type(caught.value) is expected
    if code is not None:
        assert caught.value.provider_code == code
    assert isinstance(
        caught.value.__cause__, line_messaging.ApiException | line_insight.ApiException
    )


async def test_real_validation_400_and_401(sandbox: LineSandbox, channel: LineChannel) -> None:
    with pytest.raises(PermanentChannelError) as caught:
        await channel.create_rich_menu({"size": {"width": 10, "height": 10}}, b"")
    assert caught.value.provider_code == "http_400" and "size" in caught.value.message
    wrong = LineChannel(api_url=sandbox.url, data_url=sandbox.url, channel_access_token="x")
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await wrong.list_rich_menus()
        assert caught.value.provider_code == "http_401"
    finally:
        await wrong.close()


async def test_timeout_disconnect_and_refused(sandbox: LineSandbox, line: Line) -> None:
    channel = LineChannel(
        api_url=sandbox.url, data_url=sandbox.url, channel_access_token=SANDBOX_TOKEN, timeout_s=0.2
    )
    try:
        await line.control("POST", "faults/next", json={"kind": "timeout", "hang_s": 3})
        with pytest.raises(TransientChannelError) as caught:
            await channel.list_rich_menus()
        assert caught.value.provider_code == "timeout"
        assert isinstance(caught.value.__cause__, TimeoutError)
        await line.control("POST", "faults/next", json={"kind": "disconnect"})
        with pytest.raises(TransientChannelError) as caught:  # a POST: aiohttp retries a GET
            await channel.validate_rich_menu_batch([{"type": "unlinkAll"}])
        assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
        await sandbox.stop()
        with pytest.raises(TransientChannelError) as caught:
            await channel.list_rich_menus()
        assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
        assert caught.value.provider_code == "connection"
    finally:
        await channel.close()


async def test_a_bad_url_is_a_configuration_error() -> None:
    channel = LineChannel(api_url="http://[::1", data_url="x", channel_access_token="t")
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await channel.list_rich_menus()
        assert caught.value.provider_code in ("config", "client")
    finally:
        await channel.close()


async def test_sdk_argument_checks_are_permanent(channel: LineChannel) -> None:
    messaging = await channel.messaging()
    with pytest.raises(PermanentChannelError) as caught:
        await channel._call(messaging.get_rich_menu_list, unexpected=1)
    assert isinstance(caught.value.__cause__, line_messaging.ApiTypeError)
    with pytest.raises(PermanentChannelError) as caught:
        await channel._call(messaging.get_rich_menu, 12345)  # not a StrictStr
    assert isinstance(caught.value.__cause__, pydantic.v1.ValidationError)
    with pytest.raises(PermanentChannelError) as caught:
        sdk_model(line_messaging.RichMenuBulkLinkRequest, {"richMenuId": "richmenu-1"})
    assert caught.value.provider_code == "client"


def _exception_classes(module: object) -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module.__name__  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize(
    "cls",
    _exception_classes(messaging_exceptions) + _exception_classes(insight_exceptions),
    ids=lambda cls: f"{cls.__module__.split('.')[2]}.{cls.__name__}",
)
def test_every_sdk_exception_class_is_translated(cls: type[BaseException]) -> None:
    if issubclass(cls, messaging_exceptions.ApiException | insight_exceptions.ApiException):
        status = {"NotFoundException": 404, "UnauthorizedException": 401}.get(cls.__name__)
        status = status or {"ForbiddenException": 403, "ServiceException": 503}.get(cls.__name__)
        error = translate_error(cls(status=status or 0, reason="reason"))
        if status == 503:
            assert type(error) is TransientChannelError
        else:
            assert type(error) is PermanentChannelError
            assert error.provider_code == (f"http_{status}" if status else "client")
    else:
        error = translate_error(cls("bad argument"))
        assert type(error) is PermanentChannelError and error.provider_code == "client"


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (TimeoutError(), TransientChannelError, "timeout"),
        (aiohttp.ServerTimeoutError("read"), TransientChannelError, "timeout"),
        (aiohttp.ClientPayloadError("cut"), TransientChannelError, "connection"),
        (aiohttp.ServerDisconnectedError(), TransientChannelError, "connection"),
        (aiohttp.InvalidURL("x"), PermanentChannelError, "config"),
        (ValueError("not JSON"), TransientChannelError, "connection"),
        (RuntimeError("?"), TransientChannelError, "unknown"),
    ],
)
def test_transport_errors_are_translated(
    exc: BaseException, expected: type[ChannelError], code: str
) -> None:
    error = translate_error(exc)
    assert type(error) is expected and error.provider_code == code
