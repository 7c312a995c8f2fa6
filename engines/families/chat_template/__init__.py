"""The chat-template family: any local causal LM with a chat template (engine), and its rules (rules)."""
