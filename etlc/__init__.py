"""etlc: a compiler and runtime for declarative ETL pipelines on Apache Spark."""

__version__ = "0.1.0"
