"""The operator API (FastAPI): devices, records, rejections, health, metrics and the dashboard page.

Build it with :func:`gateway.api.app.create_app`; see ``docs/gateway-api.md``.
"""
