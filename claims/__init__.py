"""Published conjectures about loss-surface curvature, as executable statistical tests."""
