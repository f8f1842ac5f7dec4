"""``etlc test``'s runner: a compiled pipeline run on given rows, its datasets compared.

The runtime side of the feature (it runs inside spark-submit, beside the drivers' runtime);
the compiler side, ``etlc.pipeline_testing``, checks the test files and starts it.
"""
