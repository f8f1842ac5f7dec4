"""Transforms: pure functions from DataFrames to a DataFrame, built by small factories.

Each implements :data:`etlc.runtime.strategies.Transform`. A transform never performs I/O, logs,
collects, registers views or touches session config.
"""
