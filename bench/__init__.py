"""Benchmarks for `make bench`: each module measures one target beside the design it replaces."""
