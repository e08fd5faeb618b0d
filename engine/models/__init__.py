"""Building, loading and reshaping the models that stages train."""
