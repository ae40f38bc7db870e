"""lbp-imaging: computable imaging criteria for low back pain.

The package is a generic engine: every clinical term, threshold, code and rule lives in
the knowledge base (``ontology/``, ``shapes/``, ``queries/``). Its folders follow what the
data goes through: ``knowledge`` (load the knowledge base), ``pipeline/`` (the steps of an
assessment, read, validate, classify, select, explain and render, and what runs them
batch by batch), ``fhir/`` (FHIR R4 in and out: Bundles read as cases, results written,
the Questionnaire generated), ``server/`` (the web server, one subpackage per surface),
``authoring/`` (``check``, ``impact`` and ``docs`` for knowledge-base authors), ``cli``
(the ``lbp-imaging`` command) and ``synthetic`` (generated cases for tests and benchmarks).

Decision support, not diagnosis.
"""

import logging


def __getattr__(name: str) -> str:
    """``__version__``: pyproject.toml's version, as the installed package's metadata carries
    it (one place to change it), read on first use: ``importlib.metadata`` takes 50 ms to
    import, a sixth of ``--help``."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lbp-imaging")
    except PackageNotFoundError:  # the package's folder put on the path, never installed
        return "0+unknown"


# A library logs and leaves the output to the application (the server sets it up).
logging.getLogger("lbp_imaging").addHandler(logging.NullHandler())

DISCLAIMER = (
    "Decision support, not diagnosis: every recommendation must be checked by the "
    "treating clinician's judgement."
)
