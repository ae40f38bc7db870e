"""The SPARQL 1.1 endpoint, ``/sparql``, in the order a request goes through it.

``protocol`` (reading a SPARQL Protocol request), ``text`` (keywords found before
running), ``policy`` (what may run), ``answer_cache`` (answers kept until the next write),
``query`` (running a query under the limits), ``query_pool``, ``query_process`` and
``worker_wire`` (queries evaluated in processes the server can kill, over replicas that
follow every write), ``service_description`` and ``router`` (the endpoint).
"""
