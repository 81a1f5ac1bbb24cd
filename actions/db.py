"""Database and content access for the action server, created on first use."""

from __future__ import annotations

from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions.content import settings
from pmi.contacts import ContactSheet, EmergencyLines
from pmi.countries import CountryNames
from pmi.db import create_engine, create_sessionmaker
from pmi.intake import FormWords, Intake
from pmi.knowledge import Replies
from pmi.labels import CaseLabels
from pmi.missions import Missions
from pmi.places import Places


@cache
def sessions() -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(create_engine(settings().database.url))


@cache
def missions() -> Missions:
    content = settings().content
    return Missions.load(content.missions_file, content.places_file)


@cache
def labels() -> CaseLabels:
    return CaseLabels.load(settings().content.case_labels_file)


@cache
def country_names() -> CountryNames:
    return CountryNames.load(settings().content.country_names_file)


@cache
def contacts() -> ContactSheet:
    content = settings().content
    return ContactSheet(
        missions(),
        EmergencyLines.load(content.emergency_lines_file),
        Replies.load(content.replies_file),
    )


@cache
def intake() -> Intake:
    content = settings().content
    return Intake(
        FormWords.load(content.form_words_file),
        labels(),
        missions().places or Places.load(content.places_file),
        country_names(),
    )
