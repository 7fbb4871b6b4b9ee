"""HTTP routes, thin: authenticate, read parameters, make one domain call, serialize."""
