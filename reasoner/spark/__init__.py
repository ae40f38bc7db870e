"""Population scale on Apache Spark (the ``spark`` extra: ``pip install '.[spark]'``).

``spark_assess(INPUT, OUTPUT, master=...)`` (and ``lbp-imaging spark-assess``) assesses a
FHIR Bulk Data export, or case files, on a Spark cluster or ``local[N]``: files read and
linked in parallel, grouped by patient with Spark's shuffle, each partition assessed by
the unchanged pipeline, results written as NDJSON and Parquet and the run document once,
with the answers of ``lbp-imaging assess INPUT --format ndjson``. ``pyspark`` is imported
only when a run starts, so importing this package does not need it.
"""

from __future__ import annotations

from .job import SparkAssessError, spark_assess

__all__ = ["SparkAssessError", "spark_assess"]
