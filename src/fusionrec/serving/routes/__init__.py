"""HTTP routes: /v1 API (recommend, items, users, explain, feedback, models, admin) and ops (/healthz, /readyz, /metrics, /)."""

from fusionrec.serving.routes import admin, ops, v1

__all__ = ["v1", "admin", "ops"]
