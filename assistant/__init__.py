"""Notes prompt assistant: retrieval and answering over a personal outline of notes."""

__version__ = "0.1.0"
