"""The textbook side of the course: GLS/BLUP formulas with the dense V, shrinkage and
effective degrees of freedom, the ICC, one-way ANOVA and the moment estimator, the
Neyman–Scott problem and data cloning.  Nothing else in lmmlib imports it.
"""
