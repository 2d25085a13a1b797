"""Settlement API, one module per area; ``settlements.api_urls`` wires them."""
