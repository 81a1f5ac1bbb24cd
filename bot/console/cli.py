"""Create console users: `make admin` (the first admin) or
`python -m bot.console.cli --username NAME --role operator|mission|admin [--mission CODE]`.

The password is asked twice on the terminal (or read from PMI_NEW_PASSWORD when no
terminal is attached); there are no default passwords.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from pmi import staff
from pmi.db import create_engine, create_sessionmaker
from pmi.missions import Missions
from pmi.models import Role
from pmi.settings import load_settings


def _password() -> str:
    if not sys.stdin.isatty():
        password = os.environ.get("PMI_NEW_PASSWORD", "")
        if not password:
            sys.exit("no terminal: set PMI_NEW_PASSWORD to give the password")
        return password
    first = getpass.getpass("Password (at least 12 characters): ")
    if first != getpass.getpass("Repeat the password: "):
        sys.exit("the passwords differ")
    return first


async def create(username: str, password: str, role: str, mission: str | None) -> None:
    settings = load_settings()
    if mission and mission not in Missions.load(settings.content.missions_file).by_code:
        sys.exit(f"unknown mission code {mission!r} (see data/missions.yml)")
    engine = create_engine(settings.database.url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            user = await staff.create_user(s, username, password, role, mission)
            await staff.audit(s, None, "user_created", username, {"role": role})
    except staff.StaffError as exc:
        sys.exit(f"not created: {exc}")
    finally:
        await engine.dispose()
    print(f"created {user.role} {user.username!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Create a console user.")
    parser.add_argument("--username", required=True)
    parser.add_argument("--role", choices=Role.ALL, required=True)
    parser.add_argument("--mission", help="mission code, for mission staff")
    args = parser.parse_args()
    asyncio.run(create(args.username, _password(), args.role, args.mission))


if __name__ == "__main__":
    main()
