"""Two-tier cache for conditioning: in-process LRU (L1) in front of Redis (L2)."""
