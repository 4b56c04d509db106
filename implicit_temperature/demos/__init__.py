"""Demos run by `itemp demo`."""
