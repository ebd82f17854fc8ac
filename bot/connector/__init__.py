"""What the study team is told and does: alerts about failures."""
