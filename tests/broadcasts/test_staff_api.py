"""Admin manages staff users, roles and API tokens; everything is audit-logged."""

from __future__ import annotations

from sqlalchemy import select

from notify.models import AuditEntry

from .conftest import Api


async def test_admin_creates_staff_and_tokens_that_work_until_revoked(api: Api) -> None:
    new = {
        "login": "sato",
        "display_name": "佐藤 広報",
        "roles": ["pr", "analyst"],
        "password": "correct horse battery",
    }
    user = await api.ok("admin", "POST", "/api/staff", new, status=201)
    assert (user["login"], user["roles"], user["active"], user["has_password"]) == (
        "sato",
        ["pr", "analyst"],
        True,
        True,
    )
    token = await api.ok(
        "admin", "POST", f"/api/staff/{user['id']}/tokens", {"name": "laptop"}, status=201
    )
    assert token["token"].startswith("stf_") and token["name"] == "laptop"
    api.headers["sato"] = {"Authorization": f"Bearer {token['token']}"}
    me = await api.ok("sato", "GET", "/api/me")
    assert me == {"staff_id": user["id"], "login": "sato", "roles": ["analyst", "pr"]}
    listed = await api.ok("admin", "GET", f"/api/staff/{user['id']}/tokens")
    assert [t["name"] for t in listed] == ["laptop"] and "token" not in listed[0]
    assert (
        await api.call("admin", "DELETE", f"/api/staff/{user['id']}/tokens/{token['id']}")
    ).status == 204
    assert (await api.call("sato", "GET", "/api/me")).status == 401
    async with api.db.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert actions == ["staff.create", "staff.token_issue", "staff.token_revoke"]


async def test_roles_change_and_deactivation(api: Api) -> None:
    staff = await api.ok("admin", "GET", "/api/staff")
    pr = next(s for s in staff if s["login"] == "pr")
    changed = await api.ok("admin", "PATCH", f"/api/staff/{pr['id']}", {"roles": ["approver"]})
    assert changed["roles"] == ["approver"]
    assert (await api.call("pr", "POST", "/api/broadcasts", {})).status == 403
    await api.ok("admin", "PATCH", f"/api/staff/{pr['id']}", {"active": False})
    assert (await api.call("pr", "GET", "/api/me")).status == 401
    admin = next(s for s in staff if s["login"] == "admin")
    last = await api.call("admin", "PATCH", f"/api/staff/{admin['id']}", {"roles": ["pr"]})
    assert last.status == 409 and "roles" in last.fields


async def test_only_admin_and_bad_input(api: Api) -> None:
    for who in ("pr", "approver", "disaster", "analyst"):
        assert (await api.call(who, "GET", "/api/staff")).status == 403
    taken = await api.call(
        "admin", "POST", "/api/staff", {"login": "pr", "display_name": "x", "roles": ["pr"]}
    )
    assert taken.status == 409 and "login" in taken.fields
    unknown = await api.call(
        "admin", "POST", "/api/staff", {"login": "new", "display_name": "x", "roles": ["boss"]}
    )
    assert unknown.status == 422 and "roles" in unknown.fields
    short = await api.call(
        "admin",
        "POST",
        "/api/staff",
        {"login": "new", "display_name": "x", "roles": ["pr"], "password": "short"},
    )
    assert short.status == 422 and "password" in short.fields
    assert (await api.call("admin", "POST", "/api/staff/999/tokens", {})).status == 404
    assert (await api.call("admin", "DELETE", "/api/staff/1/tokens/999")).status == 404
