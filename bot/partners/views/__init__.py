"""What partners (and, about partners, the study team) see: one view function per message.

Each function returns a :class:`bot.transport.view.View` (text plus buttons). The handlers and
services send what these return and ``companion preview`` shows the same, so the two cannot
drift. Views only render: they read the values they are given and never touch the database.
A service that queues messages imports its views; a view may use a service's pure rules (its
constants, its callback formats), never the other way round.
"""
