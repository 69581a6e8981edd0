"""The in-car agent: CAN bus → trips and charge sessions → signed records → outbox → MQTT.

Built in the "Agent" issue; only the package and its import boundaries exist so far.
"""
