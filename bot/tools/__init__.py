"""The command line and the tools around the bot: the demo, the sandbox run, the preview,
QR codes and readability."""
