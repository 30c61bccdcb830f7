"""Pure rules, no I/O: sites, URLs, redaction, pings."""
