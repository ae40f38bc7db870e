"""The Spark session ``spark-assess`` runs in: where its Python workers come from, how
many partitions its shuffles make, and how little Spark says while it works.

- **Python**: the executors run the interpreter running this (``PYSPARK_PYTHON``, which
  PySpark reads when the session starts), where the project and its dependencies are
  installed; on a cluster, where the nodes' interpreter may live elsewhere, a
  ``PYSPARK_PYTHON`` already set names it and is left as it is.
- **Network**: on a ``local[N]`` master the driver binds to 127.0.0.1 (nothing listens
  on an outside interface), and Spark's web UI is off. On a cluster the driver must be
  reachable from the executors, so its address is left to Spark's configuration.
- **Partitions**: ``partitions``, or twice the cores Spark offers
  (``defaultParallelism``): enough that a slow partition does not hold up the others,
  few enough that each still fills batches of cases.
- **Logging**: errors only, on stderr (``log4j2.properties`` beside this module), and no
  progress bar. The JVM's own notice of the incubator module Spark loads is printed
  before any configuration applies.

A session already active in this process (a notebook, a script started by
``spark-submit``) is used as it is and left running; otherwise one is started for the run
and stopped after it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
APP_NAME = "lbp-imaging spark-assess"


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def settings(master: str) -> dict[str, str]:
    """The Spark configuration ``spark-assess`` starts a session with."""
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG_CONFIG.resolve().as_uri()}",
    }
    if is_local(master):
        conf |= {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}
    return conf


def python_for(master: str) -> str:
    """The Python the executors run."""
    return os.environ.get("PYSPARK_PYTHON", sys.executable) if not is_local(master) else sys.executable


def start(master: str) -> SparkSession:
    """A session on ``master`` with ``settings``, its executors running ``python_for``."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(APP_NAME)
    for key, value in settings(master).items():
        builder = builder.config(key, value)
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = python_for(master)
    try:
        return builder.getOrCreate()
    finally:
        if before is None:
            del os.environ["PYSPARK_PYTHON"]
        else:
            os.environ["PYSPARK_PYTHON"] = before


@contextmanager
def spark_session(master: str) -> Iterator[SparkSession]:
    """The active session, or a new one on ``master`` stopped when the run is done."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    spark = start(master)
    try:
        yield spark
    finally:
        spark.stop()


def shuffle_partitions(spark: SparkSession, partitions: int | None) -> int:
    """The partitions of the run's shuffles (and of Spark SQL's, set to the same)."""
    n = partitions or 2 * spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    return n
