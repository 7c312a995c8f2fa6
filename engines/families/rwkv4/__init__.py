"""ChatRWKV (RWKV-4): the engine, its carried state, turn plans, strategies, checkpoint reading and chat rules."""
