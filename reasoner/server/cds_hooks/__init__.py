"""The CDS Hooks 2.0 service for imaging orders, in the order a hook call goes through it.

``trust``, ``jwks`` and ``auth`` (which clients, their keys, the JWT checked),
``request`` (the request read and checked), ``fhir_servers`` and ``prefetch`` (the
patient's data, fetched only from allowed FHIR servers), ``orders`` (which draft orders
are lumbar imaging), ``knowledge`` (what cards take from the ontology), ``cards``,
``detail`` and ``actions`` (cards, their Markdown detail, the proposed FHIR changes),
``service`` (discovery and a call from request to response), ``audit`` (decisions in the
audit log), ``feedback`` (what the user did with a card), ``router`` (the endpoints), and
the form link of an undetermined order: ``form_links`` (short-lived keys) and
``order_form_router`` (``/case/order/{key}``, the pre-filled form).
"""
