"""Persistence for Involvement Companion: models, engine, repositories and migrations.

Nothing here knows about Telegram updates or the bot; `bot/` builds on it.
"""
