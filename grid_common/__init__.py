"""Code the three services share because the logic is the same in each of them."""
