"""The kopf operator: CRD handlers and the pure render functions behind them."""
