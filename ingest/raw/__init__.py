"""The raw layer: the content-addressed archive, the parse batches and the loader of DuckDB `raw.*`."""
