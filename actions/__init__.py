"""Custom actions of the Rasa assistant, served by rasa-sdk (`python -m actions`)."""
