"""ASGI entry point for ``uvicorn appwarden.asgi:app`` (used by ``appwarden serve --workers N``)."""

from appwarden.app import create_app

app = create_app()
