"""Figures, reports and the dashboard: reads results, writes nothing back into them."""
