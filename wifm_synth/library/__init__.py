"""Sample-library ingestion: naming, discovery and key × velocity zones."""
