"""lungct_utils."""
