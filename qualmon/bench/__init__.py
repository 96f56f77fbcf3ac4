"""`qualmon bench`: what the pipeline costs and how fast warnings follow impairments.

Benchmarks, not tests: they report ratios measured within one run. May import anything.
"""
