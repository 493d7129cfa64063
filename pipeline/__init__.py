"""The build only: Polars jobs from records to a release folder, published atomically."""
