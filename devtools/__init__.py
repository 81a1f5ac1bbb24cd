"""Development tooling shared by the tests, the benchmarks and the fault and scale suites.

Fakes of the Telegram Bot API and the WhatsApp Graph API, the TCP gate and proxy that cut a
server off, the launcher of the whole stack (processes, Rasa, the action server, the app),
load generators, the reconciliation of what was sent against what was stored, and the Rasa
model builder. Nothing in bot/, pmi/ or actions/ imports it.
"""
