"""The agent's edge: CAN buses and log files (python-can), the outbox (tinydb) and MQTT (paho)."""
