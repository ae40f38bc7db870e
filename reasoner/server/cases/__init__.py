"""Cases over HTTP, ``/cases``, in the order a posted case goes through it.

``upload`` (the body read into case quads), ``workers`` (assessed in worker processes),
``graphs`` (a case and its recommendation in its named graph), ``records`` (a stored case
read back), ``versions`` and ``conditional_requests`` (the version as ``ETag``;
``If-Match``, ``If-None-Match``), ``service`` (store, read, delete) and ``router`` (the
endpoints).
"""
