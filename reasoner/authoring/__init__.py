"""Tools for guideline authors: ``check`` (a quality report on the knowledge base),
``impact`` (what an edit changes for the case library, and the axiom-level diff) and
``docs_site`` (the knowledge base as a static HTML site, with ``docs_terms``,
``decision_diagram`` and ``layered_svg``)."""
