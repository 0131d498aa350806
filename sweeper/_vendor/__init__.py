"""Third-party code copied in because it cannot be installed from a package registry (see each package's
VENDORED.md for where it comes from, the commit, its licence and what was changed)."""
