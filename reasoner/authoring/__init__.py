"""Tools for guideline authors: ``check`` (a quality report on the knowledge base) and
``impact`` (what an edit changes for the case library, and the axiom-level diff)."""
