"""The model families zhbench ships, one module or package each: prompt builder, stop rule and defaults as
small pure functions naming the upstream file they follow, and a ``FAMILY`` spec registered in
``pyproject.toml``. Families do not import each other; what they share lives in ``engines.local``."""
