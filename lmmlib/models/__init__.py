"""Fitted linear models: ``lm``, ``lmer`` and their model classes, accessors and summaries.
"""
