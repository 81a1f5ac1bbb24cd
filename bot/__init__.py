"""The app: channel adapters, relay to Rasa, language decisions and the web chat."""
