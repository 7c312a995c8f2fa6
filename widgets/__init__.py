"""zhbench's Textual widgets. They know the screen and nothing of torch."""
