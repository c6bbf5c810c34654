"""Developer tooling: the local runner, process control for tests, and topology checks."""
