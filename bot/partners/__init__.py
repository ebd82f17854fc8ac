"""What a partner can do: invites, onboarding, preferences, pausing, check-ins, the journey,
safeguarding and whether they can be reached."""
