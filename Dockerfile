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
COPY migrations migrations
COPY alembic.ini config.yml ./
RUN useradd --system --uid 10001 pmi && mkdir -p var && chown pmi var
USER pmi
EXPOSE 8080 5055
# The app by default; the action server overrides the command in docker-compose.yml.
CMD ["sh", "-c", "alembic upgrade head && python -m bot"]
