"""Zero-shot classification and retrieval over any backend: planning (`plan`), running (`runner`),
metrics, result files."""
