"""How a message gets to and from Telegram: the durable inbox, the webhook, the outbox, the
one sender, rate limits, delivery errors and the HTTP transport."""
