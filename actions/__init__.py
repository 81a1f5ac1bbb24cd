"""Custom actions of the Rasa assistant, served by `python -m actions.server` (rasa-sdk).

Importing the package does nothing: the server configures logging and opens the actions'
resources when it starts (`actions/server.py`).
"""
