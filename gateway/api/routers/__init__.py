"""One router per resource: devices, records, rejections, health, metrics (and the summary), dashboard."""
