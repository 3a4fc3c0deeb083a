"""Thin Lambda entry points over the backstop library: parse, call, return a small dict."""
