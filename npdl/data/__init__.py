"""Datasets: download and verification, parsers, text pipelines, batching."""
