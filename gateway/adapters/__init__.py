"""Adapters of the gateway to the outside: the MQTT client."""
