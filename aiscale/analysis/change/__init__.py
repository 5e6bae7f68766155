"""What changes: spend forecasts, drift between windows, change points."""
