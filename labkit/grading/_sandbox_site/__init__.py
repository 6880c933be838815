"""Holds the ``sitecustomize.py`` that the grader's sandbox puts first on ``PYTHONPATH``."""
