"""Channel simulation (relative entropy coding) on shared, randomly accessible randomness."""
