"""ClueAI's T5 checkpoints: ChatYuan and PromptCLUE, two families on one shared base (``common``)."""
