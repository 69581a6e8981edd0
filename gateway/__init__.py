"""The gateway: MQTT intake → verification → store → ack → crediting, with an operator API.

Built in the "Gateway" issue; only the package and its import boundaries exist so far.
"""
