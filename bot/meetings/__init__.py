"""Meetings: arranging them, reminders, answers and attendance."""
