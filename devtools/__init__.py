"""Developer tools, not shipped with the product (the synthetic letter generator)."""
