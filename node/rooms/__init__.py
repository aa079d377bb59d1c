"""Salon."""
