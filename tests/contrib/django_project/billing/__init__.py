"""Billing: payment accounts and invoices."""
