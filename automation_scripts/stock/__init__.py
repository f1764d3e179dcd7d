"""Stock analysis: market data providers, indicators, forecast, charts and the automation."""

from automation_scripts.stock.automation import create

__all__ = ["create"]
