"""LesionLoop's framework-free machine-learning and imaging code.

Nothing under ``ml`` imports Django, DRF or Dramatiq (a test guards it). Arrays
follow one convention everywhere: NumPy volumes are ``(D, H, W)`` = (slice, row,
column), and ``spacing_mm`` tuples are given in that same array order
``(z, y, x)``. SimpleITK images use (x, y, z); conversions happen at the edges.
"""
