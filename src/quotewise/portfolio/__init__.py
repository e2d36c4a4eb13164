"""Portfolio backtests: several instruments quoted in one run, a taker hedge on one of them, the
book's P&L attribution and its risk (docs/portfolio.md)."""
