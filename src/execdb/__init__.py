"""ExecDB: the execution-state hub of a test-automation system."""

__version__ = "0.1.0"
