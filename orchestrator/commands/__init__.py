"""One module per command; each parses options and calls one core function."""
