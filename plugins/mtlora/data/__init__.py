"""Datasets of the MTLoRA plugin: ``scenes`` (generated), ``pascal_context`` and ``nyud``.

Configuration models live in :mod:`.config`, which imports only pydantic; the loaders import
torch, Pillow and scipy when a dataset is built.
"""
