"""Quotewise: market making with a backtest you can trust and the same strategy live."""

__version__ = "0.1.0"
