"""The live web dashboard served by the controller (page, assets, push stream).

``router`` carries the routes (see ``routes``): ``GET /`` (the page), ``GET /dashboard/assets/{name}``
(its scripts and styles, shipped as package data: no CDN), ``GET /stream`` (Server-Sent Events of
status + meter + vehicle snapshots, a documented API for any client) and ``GET /dashboard/snapshot``
(one snapshot as JSON).
"""

from ccs_sim.dashboard.routes import close_streams, router

__all__ = ["close_streams", "router"]
