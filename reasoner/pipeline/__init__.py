"""The assessment pipeline, one module per step, in the order data flows through it.

Read: ``cases`` (case files into case quads, grouped per case; ``input_text`` checks the
raw text first, ``case_iri`` says which IRIs may name a case) and ``bulk_input`` (a FHIR
Bulk Data export, one patient's resources at a time). Validate: ``validate``
(SHACL case shapes). Classify: ``definitions`` (the OWL definitions as formulas),
``classify_fast`` or ``classify_hermit`` (criterion membership), ``three_valued`` (met, not
met, undetermined). Select: ``select`` (the closed-world SPARQL of ``queries/``). Explain:
``explain`` (criteria, facts, sources), ``questions`` (what would settle an undetermined
criterion), ``sources`` (quotes checked against the source documents), ``tree`` (the
reasoning chain as a tree). Render: ``render`` (table, JSON, CSV, PROV-O) and ``sinks``
(one per output format). Driving it: ``assess`` (``Assessor``: the steps over one batch),
``stream`` (batch by batch, in worker processes, into a sink) and ``malloc`` (freed memory
kept between batches).
"""
