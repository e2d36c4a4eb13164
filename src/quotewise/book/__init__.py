"""Order books: a dense tick-indexed L2 core (numba) and an L3 view by order id."""
