"""Helpers shared by test files (test files never import each other)."""
