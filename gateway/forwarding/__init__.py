"""Forwarding: issued credits, taken from the transactional outbox, delivered to sinks.

    ForwardingQueue (the store's outbox) ──► Forwarder ──► CreditSink: WebhookSink (signed POST)
            ▲                                   │                     ExportFileSink (JSON lines)
            └── mark_delivered / mark_failed ◄──┘ (RetryPolicy: backoff with jitter, then dead letter)

``model`` holds the values and the roles (:class:`~gateway.forwarding.model.Delivery`, the
``ForwardingQueue``, ``CreditSink`` and ``ForwardingObserver`` protocols, ``SinkError``); ``retry``
the backoff; ``forwarder`` the loop; ``webhook`` and ``export_file`` the sinks; ``signature`` signs
webhook bodies and lets receivers verify them. The store implements the queue; the composition root
(``gateway.app``) builds and connects everything. Importing this package imports none of the sinks.

Errors (all :class:`gateway.errors.GatewayError`)::

    SinkError                            a sink did not take a delivery; ``.retryable`` says whether to try again
    WebhookSignatureError (ValueError)   a webhook body whose signature headers do not verify (receivers)
"""
