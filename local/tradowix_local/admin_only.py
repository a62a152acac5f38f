"""`--admin-only`: the gateway answers the admin panel and its API, nothing a partner uses."""

from __future__ import annotations

from starlette.responses import JSONResponse

ADMIN_PATHS = ("/admin", "/api/admin/", "/static/")


class AdminOnly:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/admin" or path.startswith(ADMIN_PATHS[1:]):
            return await self.app(scope, receive, send)
        body = {"error": "admin_only", "message": "this stack runs with --admin-only: only /admin is served"}
        return await JSONResponse(body, status_code=404)(scope, receive, send)
