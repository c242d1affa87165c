"""Patch and bank model: validation, JSON io, compilation to flat arrays for the engine."""
