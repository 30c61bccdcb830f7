"""Operating uptimelab: status, health and validate."""
