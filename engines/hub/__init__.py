"""Where models come from: the catalog (seed and current models), the Hugging Face and ModelScope caches,
and finding and resolving the models already on this machine."""
