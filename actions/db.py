"""The action server's resources: settings, database engine and content, opened at start-up.

rasa-sdk creates the action objects itself, without arguments, so the server's start-up
hook (`actions/server.py`) opens one `Resources` and installs it here, where the actions
find it through the accessors below; the shutdown hook disposes of the engine. Nothing is
opened at import, nor on first use: an accessor called before start-up is an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pmi.contacts import ContactSheet, EmergencyLines
from pmi.countries import CountryNames
from pmi.db import create_engine, create_sessionmaker
from pmi.intake import FormWords, Intake
from pmi.knowledge import KnowledgeBase, Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.places import Places
from pmi.settings import Settings, load_settings


@dataclass(frozen=True)
class Resources:
    """Everything the actions share within one action server process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    knowledge: KnowledgeBase
    missions: Missions
    labels: CaseLabels
    country_names: CountryNames
    contacts: ContactSheet
    intake: Intake

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        """Load the content and create the engine (no connection is made yet)."""
        content, fallbacks = settings.content, settings.language.fallbacks
        missions = Missions.load(content.missions_file, content.places_file)
        labels = CaseLabels.load(content.case_labels_file)
        country_names = CountryNames.load(content.country_names_file, content.country_labels_file)
        engine = create_engine(settings.database.url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            knowledge=KnowledgeBase.load(content.knowledge_dir, fallbacks),
            missions=missions,
            labels=labels,
            country_names=country_names,
            contacts=ContactSheet(
                missions,
                EmergencyLines.load(content.emergency_lines_file),
                Replies.load(content.replies_file, fallbacks),
            ),
            intake=Intake(
                FormWords.load(content.form_words_file),
                labels,
                missions.places or Places.load(content.places_file),
                country_names,
            ),
        )

    async def close(self) -> None:
        await self.engine.dispose()


_installed: list[Resources] = []  # at most one: the running server's


def install(resources: Resources | None) -> None:
    """Make `resources` the ones the actions use (None: the server has stopped)."""
    _installed.clear()
    if resources is not None:
        _installed.append(resources)


def current() -> Resources:
    if not _installed:
        raise RuntimeError(
            "the action server's resources are not open: start it with `python -m "
            "actions.server`, or open them with `actions.db.opened()` (tests)"
        )
    return _installed[0]


@asynccontextmanager
async def opened(settings: Settings | None = None) -> AsyncIterator[Resources]:
    """Open, install, then close the resources (the server's lifetime, or a test's)."""
    resources = Resources.open(settings or load_settings())
    install(resources)
    try:
        yield resources
    finally:
        install(None)
        await resources.close()


def sessions() -> async_sessionmaker[AsyncSession]:
    return current().sessions


def missions() -> Missions:
    return current().missions


def labels() -> CaseLabels:
    return current().labels


def country_names() -> CountryNames:
    return current().country_names


def contacts() -> ContactSheet:
    return current().contacts


def intake() -> Intake:
    return current().intake
