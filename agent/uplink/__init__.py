"""The agent's MQTT uplink: drains the outbox to the broker and settles records on the gateway's acks.

``paho_uplink.PahoUplink`` is the uplink (its worker thread); ``connection.PahoConnection`` the paho
client and its callbacks; ``flights.Flights`` the pure bookkeeping of what is in flight and due;
``settings.UplinkSettings`` its configuration; ``backoff.Backoff`` the pacing of its retries.
"""
