"""The embedded web console: Jinja2 pages + static assets served by the API app.

    from api.console import router        # included by api.app.create_app
    # then open http://127.0.0.1:8080/ (executive summary), /console/performance, /console/cost, ...

The pages are shells without data: their JavaScript calls the public ``/api/v1/*`` endpoints with the
user's API key (see docs/console.md). ``/console/stream`` pushes fresh summary numbers (SSE).
"""

from api.console.router import PAGES, PUBLIC_PATHS, router

__all__ = ["PAGES", "PUBLIC_PATHS", "router"]
