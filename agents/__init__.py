"""Mesa agents: trader behaviour acting on the exchange through its order API."""
