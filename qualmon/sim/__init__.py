"""Simulated publishers, pre-encoded audio and network impairment."""
