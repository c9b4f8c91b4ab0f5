"""The command line: the Typer app (app.py), one module per command, and output helpers.

Kept free of imports so the console script (entry.py) can start work before typer loads.
"""
