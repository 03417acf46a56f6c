"""Renderers: they format results, never compute them."""
