"""http_api package."""
