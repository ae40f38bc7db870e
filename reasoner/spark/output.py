"""What ``spark-assess`` writes in its output folder:

- ``results/``: the results as NDJSON, one part file per partition (``part-*``), each
  line exactly the line ``lbp-imaging assess --format ndjson`` writes for that case
  (with the disclaimer); for a Bulk Data export the part files in name order hold the
  patients in the command's order;
- ``results.parquet/``: one row per case: ``case``, ``source``, ``status``, ``outcome``,
  ``procedures`` (the recommended procedure first, then those also recommended),
  ``urgency``, ``appropriateness``, ``selected_criteria`` (IRIs), ``warnings`` and
  ``result``, the same JSON line as text, for what the columns leave out;
- ``run.json``: the run document ``--format ndjson`` writes beside its results (summary,
  the criteria and statements the results cite, listed once, input errors and
  warnings), written once by the driver.

Both tables are written by Spark's own writers (the JVM's Parquet and text writers) from
one DataFrame, replacing what an earlier run wrote there; paths are ``file:`` URIs, so
that they name the same folder as ``run.json`` whatever file system the cluster's
configuration makes the default.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..pipeline.sinks import NdjsonSink

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    from ..pipeline.stream import StreamSummary

RESULTS = "results"
PARQUET = "results.parquet"
RUN = "run.json"


def schema() -> StructType:
    """The columns of ``executor.result_row``, in its order."""
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    def text(name: str, nullable: bool = True) -> StructField:
        return StructField(name, StringType(), nullable)

    def texts(name: str) -> StructField:
        return StructField(name, ArrayType(StringType(), False), False)

    return StructType(
        [
            text("case", False),
            text("source"),
            text("status", False),
            text("outcome"),
            texts("procedures"),
            text("urgency"),
            text("appropriateness"),
            texts("selected_criteria"),
            texts("warnings"),
            text("result", False),
        ]
    )


def write_results(spark: SparkSession, rows: RDD, output: Path) -> None:
    """The results as Parquet and as NDJSON part files, from the same rows."""
    frame = spark.createDataFrame(rows, schema())
    frame.write.mode("overwrite").parquet((output / PARQUET).resolve().as_uri())
    frame.select("result").write.mode("overwrite").text((output / RESULTS).resolve().as_uri())


def write_run(output: Path, summary: StreamSummary, knowledge_base: dict) -> None:
    """The run document, exactly as ``NdjsonSink`` closes an ``assess --format ndjson``
    run (its results went to the part files instead of the sink's stream)."""
    with (output / RUN).open("wb") as run_out:
        NdjsonSink(io.BytesIO(), run_out, knowledge_base).close(summary)
