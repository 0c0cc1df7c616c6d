"""Inference on fitted models: likelihood-ratio tests and their mixtures, exact RLRT,
Satterthwaite t-tests, profiles and confidence intervals, Hessian standard errors,
the parametric bootstrap, vectorised refits and prediction intervals.

Written against what a fitted model offers (:mod:`lmmlib.kinds`), so it imports
no model class.
"""
