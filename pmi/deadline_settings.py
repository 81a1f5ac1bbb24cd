"""Settings of case deadlines (config.yml `deadlines`), read by `pmi.deadlines`.

Defaults are the service's promises: an urgent case is contacted within an hour and
followed up every day; a normal one within two working days and then every week.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Deadline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_contact_hours: float = Field(gt=0)
    follow_up_hours: float = Field(gt=0)
    working_days: bool = False  # first contact: whole days count Monday-Friday only


class DeadlineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urgent: Deadline = Deadline(first_contact_hours=1, follow_up_hours=24)
    normal: Deadline = Deadline(first_contact_hours=48, follow_up_hours=168, working_days=True)
    categories: dict[str, Deadline] = {}  # a category's own deadline wins over its priority's

    def of(self, priority: str, category: str) -> Deadline:
        if category in self.categories:
            return self.categories[category]
        return self.urgent if priority == "urgent" else self.normal
