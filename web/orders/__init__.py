"""Checkout, order actions and the order history."""
