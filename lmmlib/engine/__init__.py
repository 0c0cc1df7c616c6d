"""The engine: formula → model frame → design → penalised least squares → optimiser.

It turns a formula and data into the criterion θ ↦ REML criterion or deviance
and minimises it; it imports nothing from the packages above it.
"""
