"""Mirrors modules/paths.py (v1.10.1): `models_path`. Tests point it at a temporary folder."""
models_path = "models"
