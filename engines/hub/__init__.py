"""Where models come from: the seed catalog, the Hugging Face and ModelScope caches, and finding and
resolving the models already on this machine."""
