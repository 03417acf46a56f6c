"""The sample project package."""
