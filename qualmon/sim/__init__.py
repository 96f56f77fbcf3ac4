"""Simulated publishers, pre-encoded audio, network impairment and the speech corpora."""
