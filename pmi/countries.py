"""Country names to ISO 3166-1 alpha-2 codes, from the NLU synonyms (one source of truth)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pmi.labels import normalise

_CODE = re.compile(r"^[A-Z]{2}$")
MIN_PHRASE = 4  # shorter names ("kl", "my", "hk") only count when they are the whole answer


class CountryNames:
    def __init__(
        self,
        names: dict[str, str],
        shown: dict[str, str] | None = None,
        labels: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.names = names  # normalised name -> code
        self.shown = shown or {}  # code -> the first name listed (no label for the code)
        self.labels = labels or {}  # code -> language -> name (data/country_names.yml)

    def name_of(self, code: str, language: str = "id") -> str | None:
        """The country's name for a worker writing `language`."""
        names = self.labels.get(code, {})
        return names.get(language) or names.get("id") or self.shown.get(code)

    @classmethod
    def load(cls, nlu_file: Path, labels_file: Path | None = None) -> CountryNames:
        raw = yaml.safe_load(nlu_file.read_text(encoding="utf-8")) or {}
        names: dict[str, str] = {}
        shown: dict[str, str] = {}
        for block in raw.get("nlu") or []:
            code = str(block.get("synonym", ""))
            if not _CODE.match(code):
                continue
            names[code.lower()] = code
            for line in str(block.get("examples", "")).splitlines():
                name = normalise(line.strip().removeprefix("- "))
                if name:
                    names[name] = code
                    shown.setdefault(code, name.title())
        labels: dict[str, dict[str, str]] = {}
        if labels_file is not None and labels_file.exists():
            raw_labels = yaml.safe_load(labels_file.read_text(encoding="utf-8")) or {}
            labels = {str(k): dict(v) for k, v in (raw_labels.get("names") or {}).items()}
        return cls(names, shown, labels)

    def resolve(self, text: str) -> str | None:
        """The code for an answer like "di taipei kak" or "Malaysia"; None if no name is known."""
        answer = normalise(text)
        if answer in self.names:
            return self.names[answer]
        padded = f" {answer} "
        best: tuple[int, str] | None = None
        for name, code in self.names.items():
            longer = best is None or len(name) > best[0]
            if len(name) >= MIN_PHRASE and longer and f" {name} " in padded:
                best = (len(name), code)
        return best[1] if best else None
