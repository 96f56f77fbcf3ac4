"""Languages: message catalogs, locale negotiation and number and date formats (Babel)."""
