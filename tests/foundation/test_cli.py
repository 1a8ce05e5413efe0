"""`python -m notify …` fails with one line and an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from notify.embedded_redis import free_port
from notify.settings import REPO_ROOT


def run(
    args: list[str], tmp_path: Path, *, program: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, *(program or ["-m", "notify"]), *args],
        cwd=REPO_ROOT,
        env={**clean, "HUB_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args", [["migrate"], ["create-staff", "x", "--roles", "pr"], ["menus", "status"]]
)
def test_an_unreachable_database_is_one_line_and_exit_69(args: list[str], tmp_path: Path) -> None:
    closed = f"postgresql://hub@127.0.0.1:{free_port()}/hub"  # nothing listens there
    result = run(args, tmp_path, DATABASE_URL=closed)
    assert result.returncode == 69, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: 接続できません / a service is not reachable")


def test_jma_ingest_names_each_file_it_cannot_read_and_goes_on(tmp_path: Path) -> None:
    missing = tmp_path / "missing.xml"
    result = run(["jma", "ingest", str(missing), str(tmp_path)], tmp_path)
    assert "Traceback" not in result.stderr
    assert f"{missing}: cannot read: No such file or directory" in result.stderr
    assert f"{tmp_path}: cannot read: Is a directory" in result.stderr


@pytest.mark.parametrize(
    ("program", "unreachable"),
    # Redis's errors are not OSErrors, the database's come wrapped by SQLAlchemy: one program
    # each way round (arq tries Redis five times a second apart, so one Redis case only).
    [("worker.py", "database"), ("server.py", "database"), ("worker.py", "redis")],
)
def test_the_worker_and_the_server_say_what_they_cannot_reach(
    program: str, unreachable: str, tmp_path: Path
) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"HUB_PORT": str(free_port()), "REDIS_URL": f"redis://{closed}/0"}
    if unreachable == "database":
        env.update(
            DATABASE_URL=f"postgresql://hub@{closed}/hub", REDIS_URL="redis://127.0.0.1:6379/9"
        )
    result = run([], tmp_path, program=[program], **env)
    assert result.returncode == 69, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "error: 接続できません / a service is not reachable" in result.stderr
