"""Time as partners live it: IANA zones, quiet hours, breaks, and dates and times in words.

Below the domain rooms: partners, meetings and the schedule all use it, and it uses none of
them."""
