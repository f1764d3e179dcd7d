"""Sports roundups: feeds, story clustering and the automation."""

from automation_scripts.sports.automation import create

__all__ = ["create"]
