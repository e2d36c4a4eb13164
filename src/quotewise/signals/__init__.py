"""Market signals a quoting strategy reads: fair value, volatility, flow and the markouts of our fills.

Pure functions plus small stateful estimators updated once per quote decision, so the same code
runs in a backtest and live. Prices are ticks, sizes lots and times nanoseconds throughout.
"""
