# Image for the app and the action server (Python 3.11). Rasa runs from rasa/rasa:3.6.21-full.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv
COPY requirements/app.txt requirements/app.txt
RUN pip install -r requirements/app.txt
COPY pmi pmi
COPY bot bot
COPY actions actions
COPY data data
# The app reads the country names and the intents from Rasa's project files.
COPY rasa_project rasa_project
COPY migrations migrations
COPY alembic.ini config.yml ./
# var/media exists in the image, owned by the app's user, so that a volume mounted there
# (docker-compose.yml) starts with that owner.
RUN useradd --system --uid 10001 pmi && mkdir -p var/media && chown -R pmi var
USER pmi
EXPOSE 8080 5055
# The app by default; migrations run once, before it (the `migrate` service in
# docker-compose.yml, a Job or init container on Kubernetes), never from every replica.
CMD ["python", "-m", "bot"]
