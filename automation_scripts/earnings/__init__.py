"""Earnings reports: calendar and fundamentals providers and the automation."""

from automation_scripts.earnings.automation import create

__all__ = ["create"]
