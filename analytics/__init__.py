"""Analytic processors' algorithms: anomaly detection, forecasting, budgets and what-if.

Pure numerical code over pandas/numpy series; it knows nothing about receivers or storage.
"""
