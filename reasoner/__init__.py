"""lbp-imaging: computable imaging criteria for low back pain.

The package is a generic engine: every clinical term, threshold, code and rule lives in
the knowledge base (``ontology/``, ``shapes/``, ``queries/``). The modules follow the
pipeline in the order data flows through it: ``knowledge`` (load the knowledge base),
``cases`` (load patient cases), ``validate`` (SHACL case shapes), ``classify_*`` (criterion
membership), ``select`` (closed-world recommendation), ``explain`` (provenance), and the
``render`` and ``cli`` front ends.

Decision support, not diagnosis.
"""

__version__ = "0.1.0"

DISCLAIMER = (
    "Decision support, not diagnosis: every recommendation must be checked by the "
    "treating clinician's judgement."
)
