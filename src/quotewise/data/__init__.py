"""Market data: readers per format, the Parquet event store, synthetic markets."""
