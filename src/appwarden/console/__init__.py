"""The web console under ``/console``: server-rendered Jinja2 pages with htmx, in Japanese and English."""
