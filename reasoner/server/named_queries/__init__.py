"""The named queries of ``queries/`` as a web API, ``/api/{name}``: ``spec`` (a query's
grlc-style header and parameters, and binding values into it), then ``router`` (one route
per query).
"""
