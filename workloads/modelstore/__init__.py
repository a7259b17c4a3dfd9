"""The model store: versioned, checksummed model bundles in MinIO / S3."""
