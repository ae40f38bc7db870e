"""lbp-imaging: computable imaging criteria for low back pain.

The package is a generic engine: every clinical term, threshold, code and rule lives in
the knowledge base (``ontology/``, ``shapes/``, ``queries/``). The modules follow the
pipeline in the order data flows through it: ``knowledge`` (load the knowledge base),
``cases`` (load patient cases), ``validate`` (SHACL case shapes), ``classify_*`` (criterion
membership), ``select`` (closed-world recommendation), ``explain`` (provenance), and the
``render`` and ``cli`` front ends.

Decision support, not diagnosis.
"""

import logging

__version__ = "0.1.0"

# A library logs and leaves the output to the application (the server sets it up).
logging.getLogger("lbp_imaging").addHandler(logging.NullHandler())

DISCLAIMER = (
    "Decision support, not diagnosis: every recommendation must be checked by the "
    "treating clinician's judgement."
)
