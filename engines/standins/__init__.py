"""Builders of tiny random-weight models in the real checkpoints' file formats, for tests, the offline
demo and benchmarks. Never on the path that loads a model."""
