"""Development tools (not shipped in the package): generators for files committed to the repo."""
