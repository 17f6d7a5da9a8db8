"""Filters of the Jobmon roles: the one place a Jobmon database URL is put together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote


def jobmon_db_url(driver: str, user: str, password: str, host: str, port: int | str, database: str) -> str:
    """SQLAlchemy URL of a MariaDB account, e.g. {{ 'mysql+pymysql' | jobmon_db_url(user=..., password=...,
    host=..., port=..., database=...) }}. User and password are percent-encoded, '/' included, so any
    generated password fits; utf8mb4 is the charset every Jobmon database uses."""
    return (f"{driver}://{quote(str(user), safe='')}:{quote(str(password), safe='')}"
            f"@{host}:{port}/{database}?charset=utf8mb4")


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"jobmon_db_url": jobmon_db_url}
