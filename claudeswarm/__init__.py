"""claudeswarm: a serverless toolkit for AI coding agents sharing one repository from tmux."""

__version__ = "0.1.0"
__all__ = ["__version__"]
