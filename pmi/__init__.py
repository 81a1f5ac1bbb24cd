"""Shared domain package of the PMI helpdesk: settings, storage, content, routing.

Both the app (`bot/`) and the action server (`actions/`) import it; it imports
neither of them.
"""
