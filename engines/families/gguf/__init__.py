"""GGUF models run in-process through llama.cpp (llama-cpp-python)."""
