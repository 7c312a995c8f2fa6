"""EVA2.0 (thu-coai): zhbench's own model and tokenizer code, and transformers 4.26's beam search."""
