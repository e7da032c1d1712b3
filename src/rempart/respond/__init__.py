"""Response: policies turn alerts into decisions; enforcement points apply them."""
