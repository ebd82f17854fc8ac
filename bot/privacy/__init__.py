"""A partner's data: what they can take away (my data) and withdrawal."""
