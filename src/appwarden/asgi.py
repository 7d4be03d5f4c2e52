"""ASGI entry point for ``uvicorn appwarden.asgi:app`` (used by ``appwarden serve``, one or N workers).

Logs are JSON lines on stderr, configured before the app is built so every worker logs alike."""

from appwarden import logs
from appwarden.app import create_app

logs.configure(json=True)
app = create_app()
