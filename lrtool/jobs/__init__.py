"""One module per command: what ``lrtool find``, ``train``, ``compare`` and ``plot`` do.

A job takes the loaded config and the command's flags, applies and validates them once,
chooses the LR (a typed plan, never magic keys), builds and runs the engines, writes the
result files into the run folder it claimed, and returns a typed outcome for the CLI to
render. Jobs never print. Importing this package does not import torch; ``plot`` never does.
"""
