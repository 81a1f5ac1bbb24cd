# PMI helpdesk: `make run` sets everything up and runs the stack; `make test` runs all tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
RASA_VENV := .venv-rasa
PY        := $(VENV)/bin/python
RASA      := $(RASA_VENV)/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONPATH := $(CURDIR)
# python-telegram-bot: opt in to timedelta retry_after (the v23 behaviour) now.
export PTB_TIMEDELTA := 1

.PHONY: help setup run test chat migrate model validate lint lock clean eval-nlu bench-langid import-agencies admin export-corrections

help:
	@echo "make run    - set up (venvs, database, model) and run the whole stack"
	@echo "make test   - set up and run every check and test"
	@echo "make chat   - terminal chat with a running stack"
	@echo "make admin  - create the first console admin (asks for a name and password)"
	@echo "make export-corrections - console intent corrections as NLU data in var/corrections/"
	@echo "make model  - train the Rasa model if its inputs changed"
	@echo "make eval-nlu - held-out NLU evaluation against Rasa's default and TF-IDF + LR"
	@echo "make eval-emergency - emergency triage on held-out emergencies and look-alikes"
	@echo "make eval-complaints - scripted complaints through app, Rasa and actions: turns, fields"
	@echo "make test-scale - two Rasa servers and two apps on PostgreSQL + Redis, one killed"
	@echo "make bench - latency, throughput, start-up, memory and accuracy: reports/bench.md"
	@echo "make bench-policies - per-turn cost of other Rasa policy sets (Memoization, TED)"
	@echo "make bench-langid - language detection accuracy against raw langdetect"

# Virtual environments are rebuilt only when their lock file changes.
$(VENV)/.installed: requirements/app.txt
	@test -x $(PY) || $$(scripts/find-python.sh 3.11) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/app.txt
	@touch $@

$(RASA_VENV)/.installed: requirements/rasa.txt
	@test -x $(RASA_VENV)/bin/python || $$(scripts/find-python.sh 3.10) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/python -m pip install -q --upgrade pip
	@echo "Installing Rasa 3.6 into $(RASA_VENV) (several minutes the first time)…"
	$(RASA_VENV)/bin/python -m pip install -q -r requirements/rasa.txt
	@touch $@

setup: $(VENV)/.installed $(RASA_VENV)/.installed

migrate: $(VENV)/.installed
	$(VENV)/bin/alembic upgrade head

model: setup
	$(PY) -m scripts.model

run: setup migrate model
	$(PY) -m scripts.run

chat: $(VENV)/.installed
	$(PY) -m bot.cli_chat

validate: setup
	$(PY) -m scripts.validate_rasa

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup model lint validate
	DATABASE_URL=sqlite:///var/alembic-check.db $(VENV)/bin/alembic upgrade head
	DATABASE_URL=sqlite:///var/alembic-check.db $(VENV)/bin/alembic check
	$(PY) -m scripts.rasa_stories
	$(VENV)/bin/pytest

admin: migrate
	@read -r -p "Admin user name: " name && $(PY) -m bot.console.cli --username "$$name" --role admin

export-corrections: migrate
	$(PY) -m scripts.export_corrections

import-agencies: migrate
	@test -n "$(FILE)" || { echo "usage: make import-agencies FILE=registry.csv"; exit 2; }
	$(PY) -m scripts.import_agencies "$(FILE)"

bench-langid: $(VENV)/.installed
	$(PY) -m scripts.bench_langid

eval-nlu: setup
	$(PY) -m scripts.eval_nlu

# Emergency triage on the held-out emergencies and look-alikes, next to the lexicon-override
# design it replaced (its model is trained once from that commit and cached): reports/emergency.json
.PHONY: eval-emergency
eval-emergency: setup model
	$(PY) -m scripts.eval_emergency

.PHONY: eval-complaints
eval-complaints: setup model
	$(PY) -m scripts.eval_complaints

# Slow (about 10 minutes), so not part of `make test`; BENCH_ARGS=--quick for a short run.
.PHONY: bench
bench: setup migrate model
	$(PY) -m scripts.bench $(BENCH_ARGS)

# What other dialogue policies (Memoization, TED at two max_history) would cost per turn;
# trains each variant once (cached); `make bench` includes the table once this has run.
.PHONY: bench-policies
bench-policies: setup model
	$(PY) -m scripts.bench_policies $(BENCH_ARGS)

# Data protection: backups (var/backups/, personal data: keep them encrypted), retention.
.PHONY: backup restore retention test-faults
backup: $(VENV)/.installed
	$(PY) -m scripts.backup backup

restore: $(VENV)/.installed
	@test -n "$(FILE)" || { echo "usage: make restore FILE=var/backups/pmi-backup-....tar [FORCE=1]"; exit 2; }
	$(PY) -m scripts.backup restore "$(FILE)" $(if $(FORCE),--force)

retention: migrate
	$(PY) -m scripts.retention $(if $(DRY_RUN),--dry-run)

# Scale-out on this machine: two Rasa servers and two apps sharing PostgreSQL and Redis
# (needs both on 127.0.0.1); `make test` runs the short form. Prints the counts.
.PHONY: test-scale
test-scale: setup model
	PMI_LONG=1 $(VENV)/bin/pytest tests/test_scale.py -q

# Long fault suite and bad-input fuzzing with many more examples; prints the counts.
test-faults: setup model
	PMI_LONG=1 HYPOTHESIS_PROFILE=faults $(VENV)/bin/pytest tests/faults tests/test_fuzz.py -q

lock:
	$(PY) -m pip install -q -r requirements/app.in -r requirements/dev.in
	(echo "# Locked set for .venv (Python 3.11): app, action server and dev tools. From app.in + dev.in."; $(PY) -m pip freeze) > requirements/app.txt

clean:
	rm -rf $(VENV) $(RASA_VENV) models var .pytest_cache
