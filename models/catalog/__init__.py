"""The catalog: categories, products, variants and images."""
