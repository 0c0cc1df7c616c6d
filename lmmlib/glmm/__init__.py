"""Generalised linear mixed models: families, penalised IRLS with the Laplace and
adaptive Gauss–Hermite approximations, ``glmer`` and its model class.
"""
