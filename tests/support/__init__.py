"""Test support shared by the test tiers."""
