"""Models whose weights run in this process: the token-by-token engine base, transformers loading,
decoding state and the lean decoding steps. Families build on these; nothing here knows a family."""
